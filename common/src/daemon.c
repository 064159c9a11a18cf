/* Signal handling for daemons: a blocked mask and sigwait(), no async handlers (see daemon.h). */
#include "nubo/daemon.h"

#include <pthread.h>
#include <signal.h>

static void term_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

void nb_daemon_block_signals(void)
{
    sigset_t set;
    term_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int nb_daemon_wait_signal(void)
{
    sigset_t set;
    term_set(&set);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return sig;
}

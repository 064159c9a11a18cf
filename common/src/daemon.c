/* Signal handling for daemons: a blocked mask and sigwait(), no async handlers (see daemon.h). */
#include <malloc.h>
#include "nubo/daemon.h"
#include "nubo/log.h"
#include "nubo/error.h"
#include "nubo/config.h"

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

int nb_daemon_log_init(const struct nb_config *cfg, const char *program, struct nb_error *err)
{
    enum nb_log_level level;
    const char *name = nb_config_get(cfg, "log.level", "info");
    if (nb_log_parse_level(name, &level) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "invalid log.level \"%s\"", name);
        return -1;
    }
    nb_log_init(program, level, nb_config_get(cfg, "log.file", NULL));
    return 0;
}

void nb_daemon_bound_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

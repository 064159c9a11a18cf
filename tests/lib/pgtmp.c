/* A throwaway PostgreSQL 15 cluster for integration tests (see pgtmp.h).
 *
 * The server is started directly (not through pg_ctl) so that the postmaster is our child: we
 * reap it ourselves, which a restart after SIGKILL needs (a new postmaster refuses to start while
 * the old PID still exists, even as a zombie waiting for PID 1). */
#include "pgtmp.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BINDIR   "/usr/lib/postgresql/15/bin"
#define START_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS  30000

struct nb_test_pg {
    char dir[64];     /* mkdtemp directory: socket, logs, data */
    char datadir[96]; /* dir/data */
    char bindir[256]; /* initdb and postgres */
    char conninfo[256];
    int port;
    pid_t pid; /* the postmaster (our child), 0 when not running */
    bool drop; /* we are root: run PostgreSQL as 'uid'/'gid' */
    uid_t uid;
    gid_t gid;
};

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Prints the last lines of the log file 'name' in the cluster directory to stderr. */
static void print_log_tail(const struct nb_test_pg *t, const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        return;
    }
    char buf[4096];
    long size = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        size = ftell(f);
    }
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "pgtmp: --- end of %s ---\n%s\npgtmp: ---\n", path, buf);
}

/* Forks and execs 'argv' (argv[0] a full path) with a minimal environment, stdout and stderr
 * appended to 'dir/logname', as the PostgreSQL user when we are root. Returns the child's PID,
 * or -1 after printing why. Everything the child needs is prepared before fork(), since only
 * async-signal-safe calls are allowed between fork() and exec() in a threaded process. */
static pid_t spawn(const struct nb_test_pg *t, char *const argv[], const char *logname)
{
    char log_path[160];
    snprintf(log_path, sizeof log_path, "%s/%s", t->dir, logname);
    char *const envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", NULL};
    pid_t parent = getpid();

    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "pgtmp: could not fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        return pid;
    }
    int null_fd = open("/dev/null", O_RDONLY);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (null_fd < 0 || log_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 ||
        dup2(log_fd, 2) < 0) {
        _exit(126);
    }
    if (t->drop) {
        if (setgroups(1, &t->gid) < 0 || setgid(t->gid) < 0 || setuid(t->uid) < 0) {
            _exit(126);
        }
    }
    /* Set after setuid(), which clears it: the server shuts down if the test process dies. */
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (getppid() != parent) {
        _exit(126);
    }
    execve(argv[0], argv, envp);
    _exit(127);
}

/* Waits at most 'timeout_ms' for child 'pid' to exit. Returns its wait status, or -1 on
 * timeout or error (the child is then left running). */
static int wait_child(pid_t pid, long timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return status;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (now_ms() > deadline) {
            return -1;
        }
        sleep_ms(10);
    }
}

/* Runs 'argv' to completion. Returns 0 if it exited with status 0, else -1 after printing why. */
static int run(const struct nb_test_pg *t, char *const argv[], const char *logname)
{
    pid_t pid = spawn(t, argv, logname);
    if (pid < 0) {
        return -1;
    }
    int status = wait_child(pid, START_TIMEOUT_MS);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fprintf(stderr, "pgtmp: %s did not finish in time\n", argv[0]);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pgtmp: %s failed (wait status %d)\n", argv[0], status);
        print_log_tail(t, logname);
        return -1;
    }
    return 0;
}

/* Finds the server binaries: $NUBO_PG_BINDIR, `pg_config --bindir`, or the Debian path. */
static void find_bindir(char *out, size_t size)
{
    const char *env = getenv("NUBO_PG_BINDIR");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return;
    }
    snprintf(out, size, "%s", DEFAULT_BINDIR);
    int fds[2];
    if (pipe(fds) < 0) {
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], 1) < 0) {
            _exit(126);
        }
        execlp("pg_config", "pg_config", "--bindir", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[256];
    size_t len = 0;
    ssize_t n;
    while (pid > 0 && len < sizeof buf - 1 &&
           (n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0) {
        len += (size_t)n;
    }
    close(fds[0]);
    if (pid > 0) {
        waitpid(pid, NULL, 0);
    }
    buf[len] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    char initdb[300];
    snprintf(initdb, sizeof initdb, "%s/initdb", buf);
    if (len > 0 && access(initdb, X_OK) == 0) {
        snprintf(out, size, "%s", buf);
    }
}

/* Returns a TCP port of 127.0.0.1 that was free a moment ago, or -1. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

static char *conninfo_for(const struct nb_test_pg *t, const char *dbname)
{
    char *s = NULL;
    if (asprintf(&s, "host=%s port=%d dbname=%s user=nubo", t->dir, t->port, dbname) < 0) {
        return NULL;
    }
    return s;
}

/* Starts the postmaster and waits until it accepts connections. Returns 0, or -1 after printing
 * why (the server is then not running). Sets '*bind_failed' when the port was taken. */
static int start_server(struct nb_test_pg *t, bool *bind_failed)
{
    char postgres[300], port[16];
    snprintf(postgres, sizeof postgres, "%s/postgres", t->bindir);
    snprintf(port, sizeof port, "%d", t->port);
    /* Tests trade durability for speed; benchmarks set NUBO_TEST_PG_DURABLE=1 to measure with
     * the fsync a production server does. */
    bool durable = getenv("NUBO_TEST_PG_DURABLE") != NULL;
    char fsync_opt[] = "fsync=off", fpw_opt[] = "full_page_writes=off";
    if (durable) {
        strcpy(fsync_opt, "fsync=on");
        strcpy(fpw_opt, "full_page_writes=on");
    }
    char *const argv[] = {postgres, "-D", t->datadir, "-k",      t->dir, "-h",    "127.0.0.1",
                          "-p",     port, "-c",       fsync_opt, "-c",   fpw_opt, NULL};
    *bind_failed = false;
    pid_t pid = spawn(t, argv, "server.log");
    if (pid < 0) {
        return -1;
    }
    char *ping_info = conninfo_for(t, "postgres");
    if (!ping_info) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    long deadline = now_ms() + START_TIMEOUT_MS;
    int rc = -1;
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "pgtmp: the server exited during start-up (wait status %d)\n", status);
            print_log_tail(t, "server.log");
            pid = 0;
            break;
        }
        if (PQping(ping_info) == PQPING_OK) {
            rc = 0;
            break;
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "pgtmp: the server did not accept connections in time\n");
            print_log_tail(t, "server.log");
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            pid = 0;
            break;
        }
        sleep_ms(20);
    }
    free(ping_info);
    if (rc < 0 && pid == 0) {
        /* A taken port is the one start-up failure worth a retry. */
        char path[160], buf[8192];
        snprintf(path, sizeof path, "%s/server.log", t->dir);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
            *bind_failed = strstr(buf, "could not bind") != NULL;
        }
    }
    t->pid = rc == 0 ? pid : 0;
    return rc;
}

int nb_test_pg_create_db(struct nb_test_pg *t, const char *dbname)
{
    char *info = conninfo_for(t, "postgres");
    if (!info) {
        return -1;
    }
    PGconn *pg = PQconnectdb(info);
    free(info);
    int rc = -1;
    char *quoted = NULL;
    char *sql = NULL;
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "pgtmp: could not connect: %s", PQerrorMessage(pg));
        goto cleanup;
    }
    quoted = PQescapeIdentifier(pg, dbname, strlen(dbname));
    if (!quoted || asprintf(&sql, "CREATE DATABASE %s", quoted) < 0) {
        sql = NULL;
        fprintf(stderr, "pgtmp: could not quote \"%s\"\n", dbname);
        goto cleanup;
    }
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        rc = 0;
    } else {
        fprintf(stderr, "pgtmp: \"%s\" failed: %s", sql, PQerrorMessage(pg));
    }
    PQclear(res);
cleanup:
    free(sql);
    PQfreemem(quoted);
    PQfinish(pg);
    return rc;
}

char *nb_test_pg_conninfo_db(const struct nb_test_pg *t, const char *dbname)
{
    return conninfo_for(t, dbname);
}

const char *nb_test_pg_conninfo(const struct nb_test_pg *t)
{
    return t->conninfo;
}

int nb_test_pg_port(const struct nb_test_pg *t)
{
    return t->port;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (remove(path) < 0 && errno != ENOENT) {
        fprintf(stderr, "pgtmp: could not remove \"%s\": %s\n", path, strerror(errno));
    }
    return 0;
}

struct nb_test_pg *nb_test_pg_start(void)
{
    struct nb_test_pg *t = calloc(1, sizeof *t);
    if (!t) {
        fprintf(stderr, "pgtmp: out of memory\n");
        return NULL;
    }
    snprintf(t->dir, sizeof t->dir, "/tmp/nubo-pg-XXXXXX");
    if (!mkdtemp(t->dir)) {
        fprintf(stderr, "pgtmp: could not create a directory in /tmp: %s\n", strerror(errno));
        free(t);
        return NULL;
    }
    snprintf(t->datadir, sizeof t->datadir, "%s/data", t->dir);
    find_bindir(t->bindir, sizeof t->bindir);

    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            fprintf(stderr, "pgtmp: running as root needs the \"postgres\" user "
                            "(install the postgresql package)\n");
            goto fail;
        }
        t->drop = true;
        t->uid = pw->pw_uid;
        t->gid = pw->pw_gid;
        if (chown(t->dir, t->uid, t->gid) < 0) {
            fprintf(stderr, "pgtmp: could not chown \"%s\": %s\n", t->dir, strerror(errno));
            goto fail;
        }
    }

    char initdb[300];
    snprintf(initdb, sizeof initdb, "%s/initdb", t->bindir);
    char *const initdb_argv[] = {initdb, "--no-sync", "-A",         "trust", "-U",       "nubo",
                                 "-E",   "UTF8",      "--locale=C", "-D",    t->datadir, NULL};
    if (run(t, initdb_argv, "initdb.log") < 0) {
        goto fail;
    }

    bool bind_failed = true;
    for (int attempt = 0; bind_failed && attempt < 5; attempt++) {
        t->port = free_port();
        if (t->port < 0) {
            fprintf(stderr, "pgtmp: could not find a free port: %s\n", strerror(errno));
            goto fail;
        }
        if (start_server(t, &bind_failed) == 0) {
            break;
        }
    }
    if (t->pid == 0) {
        goto fail;
    }
    snprintf(t->conninfo, sizeof t->conninfo, "host=%s port=%d dbname=nubo user=nubo", t->dir,
             t->port);
    if (nb_test_pg_create_db(t, "nubo") < 0) {
        goto fail;
    }
    return t;

fail:
    nb_test_pg_destroy(t);
    return NULL;
}

/* Sends 'sig' to the postmaster and waits for it to exit, SIGKILLing it after a while. */
static int stop_with(struct nb_test_pg *t, int sig)
{
    if (t->pid == 0) {
        return 0;
    }
    kill(t->pid, sig);
    int status = wait_child(t->pid, STOP_TIMEOUT_MS);
    if (status == -1) {
        fprintf(stderr, "pgtmp: the server did not stop in time; killing it\n");
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
    }
    t->pid = 0;
    return status == -1 ? -1 : 0;
}

int nb_test_pg_stop(struct nb_test_pg *t)
{
    return stop_with(t, SIGINT);
}

int nb_test_pg_stop_immediate(struct nb_test_pg *t)
{
    return stop_with(t, SIGQUIT);
}

/* Reads the shared memory ID from line 7 ("key id") of postmaster.pid. Returns it, or -1. */
static int read_shmid(const struct nb_test_pg *t)
{
    char path[160], line[256];
    snprintf(path, sizeof path, "%s/postmaster.pid", t->datadir);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    int id = -1;
    for (int i = 1; fgets(line, sizeof line, f); i++) {
        long key, shmid;
        if (i == 7 && sscanf(line, "%ld %ld", &key, &shmid) == 2) {
            id = (int)shmid;
            break;
        }
    }
    fclose(f);
    return id;
}

int nb_test_pg_kill(struct nb_test_pg *t)
{
    if (t->pid == 0) {
        return 0;
    }
    int shmid = read_shmid(t);
    kill(t->pid, SIGKILL);
    waitpid(t->pid, NULL, 0);
    t->pid = 0;
    /* The orphaned backends notice the postmaster's death and exit; a new postmaster refuses to
     * start while any of them is still attached to the old shared memory. */
    long deadline = now_ms() + STOP_TIMEOUT_MS;
    for (;;) {
        struct shmid_ds ds;
        if (shmid < 0 || shmctl(shmid, IPC_STAT, &ds) < 0 || ds.shm_nattch == 0) {
            return 0;
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "pgtmp: backends of the killed server are still running\n");
            return -1;
        }
        sleep_ms(10);
    }
}

int nb_test_pg_start_again(struct nb_test_pg *t)
{
    if (t->pid != 0) {
        return 0;
    }
    bool bind_failed;
    return start_server(t, &bind_failed);
}

void nb_test_pg_destroy(struct nb_test_pg *t)
{
    if (!t) {
        return;
    }
    nb_test_pg_stop(t);
    if (t->dir[0]) {
        nftw(t->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    free(t);
}

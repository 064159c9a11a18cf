/* A throwaway Open vSwitch (ovstmp.h). */
#include "ovstmp.h"

#include "ovs.h"
#include "nubo/error.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ovstmp {
    char dir[64];
    char netns[32]; /* ovs-vswitchd runs in a namespace of its own: the userspace datapath makes
                       a tap device "ovs-netdev", one per namespace */
};

static int run(const char *const argv[], struct nb_error *err)
{
    return nc_run(argv, NULL, 0, NULL, 20000, err);
}

struct ovstmp *ovstmp_start(struct nb_error *err)
{
    struct ovstmp *o = calloc(1, sizeof *o);
    snprintf(o->dir, sizeof o->dir, "/tmp/nubo-ovs-XXXXXX");
    if (!mkdtemp(o->dir)) {
        nb_error_errno(err, 0, "mkdtemp");
        free(o);
        return NULL;
    }
    setenv("OVS_RUNDIR", o->dir, 1);
    setenv("OVS_DBDIR", o->dir, 1);
    setenv("OVS_LOGDIR", o->dir, 1);
    char db[96], sock[96], remote[112], dbpid[96], swpid[96], dblog[96], swlog[96], dbarg[112];
    snprintf(db, sizeof db, "%s/conf.db", o->dir);
    snprintf(sock, sizeof sock, "%s/db.sock", o->dir);
    snprintf(remote, sizeof remote, "--remote=punix:%s", sock);
    snprintf(dbpid, sizeof dbpid, "--pidfile=%s/ovsdb-server.pid", o->dir);
    snprintf(swpid, sizeof swpid, "--pidfile=%s/ovs-vswitchd.pid", o->dir);
    snprintf(dblog, sizeof dblog, "--log-file=%s/ovsdb-server.log", o->dir);
    snprintf(swlog, sizeof swlog, "--log-file=%s/ovs-vswitchd.log", o->dir);
    snprintf(dbarg, sizeof dbarg, "unix:%s", sock);
    const char *create[] = {"ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema",
                            NULL};
    const char *server[] = {"ovsdb-server", remote, dbpid, dblog, "--detach", db, NULL};
    const char *init[] = {"ovs-vsctl", "--no-wait", "init", NULL};
    snprintf(o->netns, sizeof o->netns, "nubo-ovs-%s", o->dir + strlen("/tmp/nubo-ovs-"));
    const char *addns[] = {"ip", "netns", "add", o->netns, NULL};
    const char *vswitchd[] = {"ip",  "netns", "exec", o->netns,   "ovs-vswitchd",
                              dbarg, swpid,   swlog,  "--detach", NULL};
    if (run(create, err) < 0 || run(server, err) < 0 || run(init, err) < 0 || run(addns, err) < 0 ||
        run(vswitchd, err) < 0) {
        ovstmp_stop(o);
        return NULL;
    }
    return o;
}

static void kill_pidfile(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1) {
            pid = 0;
        }
        fclose(f);
    }
    if (pid > 0 && kill(pid, SIGTERM) == 0) {
        for (int i = 0; i < 100 && kill(pid, 0) == 0; i++) {
            usleep(20000);
        }
        kill(pid, SIGKILL);
    }
}

void ovstmp_stop(struct ovstmp *o)
{
    if (!o) {
        return;
    }
    struct nb_error err = {0};
    char *out = NULL;
    const char *list[] = {"ovs-vsctl", "--timeout=5", "list-br", NULL};
    if (nc_run(list, NULL, 0, &out, 5000, &err) == 0) {
        for (char *save = NULL, *br = strtok_r(out, "\n", &save); br;
             br = strtok_r(NULL, "\n", &save)) {
            const char *del[] = {"ovs-vsctl", "--timeout=5", "del-br", br, NULL};
            nc_run(del, NULL, 0, NULL, 5000, &err);
        }
    }
    free(out);
    kill_pidfile(o->dir, "ovs-vswitchd.pid");
    kill_pidfile(o->dir, "ovsdb-server.pid");
    if (o->netns[0]) {
        const char *delns[] = {"ip", "netns", "del", o->netns, NULL};
        nc_run(delns, NULL, 0, NULL, 10000, &err);
    }
    const char *rm[] = {"rm", "-rf", o->dir, NULL};
    nc_run(rm, NULL, 0, NULL, 10000, &err);
    free(o);
}

const char *ovstmp_rundir(const struct ovstmp *o)
{
    return o->dir;
}

/* The libvirt provider (see virt.h).
 *
 * Deadlines: libvirt's API blocks until libvirtd answers, so each operation is a "job" run on its
 * own detached worker thread while the caller waits on a condition variable with a deadline. The
 * job is heap-allocated and reference-counted (caller and worker); its inputs and outputs live in
 * an argument block. When the deadline passes, the caller marks the job abandoned and returns
 * NB_ERR_TIMEOUT; the argument block then belongs to the worker, which frees it when (if ever) the
 * libvirt call returns. Each job holds its own reference on the connection, dropped by the worker,
 * so agent_virt_close() never pulls the connection from under a late call. */
#include "virt.h"
#include "meta.h"
#include "virt_priv.h"

#include "nubo/clock.h"
#include "nubo/error.h"
#include "nubo/log.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_URI        "qemu:///system"
#define DEFAULT_TIMEOUT_MS 30000L
#define STOP_POLL_MS       200L

/* What outlives the provider: the count of abandoned calls, shared with their workers. */
struct virt_shared {
    atomic_int refs;
    atomic_int abandoned;
};

struct agent_virt {
    char *uri;
    pthread_mutex_t mu; /* guards 'conn', replaced when libvirtd went away */
    virConnectPtr conn;
    long timeout_ms;
    int ka_interval;
    unsigned ka_count;
    atomic_long test_delay_ms;
    struct virt_shared *shared;
    char *probe_kernel, *probe_initrd, *probe_marker; /* agent_virt_set_probe_guest() */
};

struct virt_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool done;
    bool abandoned;
    virConnectPtr conn; /* the job's own reference; NULL for the open job */
    long delay_ms;
    int (*fn)(virConnectPtr conn, void *arg, struct nb_error *err);
    void *arg;
    void (*arg_free)(void *arg);
    struct virt_shared *shared;
    int rc;
    struct nb_error err;
};

static void shared_unref(struct virt_shared *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        free(s);
    }
}

/* ---- libvirt set-up: quiet errors, one event loop for keep-alive ---------------------------- */

static void quiet_error(void *data, virErrorPtr e)
{
    /* Errors are read with virGetLastError() by the thread that made the call. */
}

static void *event_loop(void *arg)
{
    for (;;) {
        if (virEventRunDefaultImpl() < 0) {
            nb_warn("libvirt event loop failed: %s", virGetLastErrorMessage());
            sleep(1);
        }
    }
    return NULL;
}

static pthread_once_t libvirt_once = PTHREAD_ONCE_INIT;

static void libvirt_init_once(void)
{
    virInitialize();
    virSetErrorFunc(NULL, quiet_error);
    if (virEventRegisterDefaultImpl() < 0) {
        nb_warn("could not register libvirt's event loop: keep-alive is off");
        return;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, event_loop, NULL) == 0) {
        pthread_detach(t);
    }
}

/* Fills 'err' from the calling thread's last libvirt error; 'what' says what failed. */
static void set_virt_error(struct nb_error *err, const char *what)
{
    virErrorPtr e = virGetLastError();
    enum nb_errcode code = NB_ERR_INTERNAL;
    if (e) {
        switch (e->code) {
        case VIR_ERR_NO_DOMAIN:
            code = NB_ERR_NOT_FOUND;
            break;
        case VIR_ERR_OPERATION_INVALID:
        case VIR_ERR_OPERATION_DENIED:
            code = NB_ERR_CONFLICT;
            break;
        case VIR_ERR_XML_ERROR:
        case VIR_ERR_XML_DETAIL:
        case VIR_ERR_INVALID_ARG:
        case VIR_ERR_CONFIG_UNSUPPORTED:
            code = NB_ERR_INVALID;
            break;
        case VIR_ERR_OPERATION_TIMEOUT:
        case VIR_ERR_AGENT_UNRESPONSIVE:
            code = NB_ERR_TIMEOUT;
            break;
        case VIR_ERR_NO_CONNECT:
        case VIR_ERR_RPC:
        case VIR_ERR_SYSTEM_ERROR:
        case VIR_ERR_INVALID_CONN:
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_AUTH_UNAVAILABLE:
            code = NB_ERR_UNAVAILABLE;
            break;
        default:
            break;
        }
    }
    const char *msg = e && e->message ? e->message : "unknown libvirt error";
    nb_error_set(err, code, "%s: %s", what, msg);
    nb_error_detail(err, "libvirt error code %d, domain %d", e ? e->code : -1, e ? e->domain : -1);
}

static int last_error_code(void)
{
    virErrorPtr e = virGetLastError();
    return e ? e->code : VIR_ERR_OK;
}

/* ---- jobs --------------------------------------------------------------------------------- */

static void job_unref(struct virt_job *job)
{
    pthread_mutex_lock(&job->mu);
    int left = --job->refs;
    pthread_mutex_unlock(&job->mu);
    if (left > 0) {
        return;
    }
    pthread_mutex_destroy(&job->mu);
    pthread_cond_destroy(&job->cv);
    shared_unref(job->shared);
    free(job);
}

static void *job_main(void *p)
{
    struct virt_job *job = p;
    if (job->delay_ms > 0) {
        struct timespec ts = {job->delay_ms / 1000, (job->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    struct nb_error err = {0};
    int rc = job->fn(job->conn, job->arg, &err);
    if (job->conn) {
        virConnectClose(job->conn);
        job->conn = NULL;
    }
    virResetLastError();
    pthread_mutex_lock(&job->mu);
    job->done = true;
    job->rc = rc;
    job->err = err;
    bool abandoned = job->abandoned;
    pthread_cond_signal(&job->cv);
    pthread_mutex_unlock(&job->mu);
    if (abandoned) {
        if (job->arg_free) {
            job->arg_free(job->arg);
        }
        atomic_fetch_sub(&job->shared->abandoned, 1);
        nb_info("an abandoned libvirt call returned after its deadline");
    }
    job_unref(job);
    return NULL;
}

/* Runs 'fn'('conn', 'arg') on a worker thread and waits at most 'timeout_ms'. When it finishes in
 * time, returns its result (0 or -1 with 'err' set) and 'arg' (heap memory) is still the
 * caller's. Returns -2 with 'err' set when 'arg' is no longer the caller's: on timeout
 * (NB_ERR_TIMEOUT; the worker frees 'arg' with 'arg_free' when it returns), and when the job
 * could not even start ('arg' freed already). 'conn' may be NULL (the job connects itself). */
static int run_job(struct virt_shared *shared, virConnectPtr conn, long timeout_ms, long delay_ms,
                   int (*fn)(virConnectPtr, void *, struct nb_error *), void *arg,
                   void (*arg_free)(void *), struct nb_error *err)
{
    if (atomic_load(&shared->abandoned) >= AGENT_VIRT_MAX_ABANDONED) {
        nb_error_set(err, NB_ERR_UNAVAILABLE, "libvirtd is not answering: %d calls are still hung",
                     atomic_load(&shared->abandoned));
        if (arg_free) {
            arg_free(arg);
        }
        return -2;
    }
    struct virt_job *job = calloc(1, sizeof *job);
    if (!job) {
        abort();
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&job->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&job->mu, NULL);
    job->refs = 2;
    job->fn = fn;
    job->arg = arg;
    job->arg_free = arg_free;
    job->delay_ms = delay_ms;
    job->shared = shared;
    atomic_fetch_add(&shared->refs, 1);
    if (conn) {
        virConnectRef(conn);
        job->conn = conn;
    }
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &ta, job_main, job);
    pthread_attr_destroy(&ta);
    if (rc != 0) {
        if (job->conn) {
            virConnectClose(job->conn);
        }
        job->refs = 1;
        job_unref(job);
        nb_error_errno(err, rc, "could not start a thread for a libvirt call");
        if (arg_free) {
            arg_free(arg);
        }
        return -2;
    }

    struct timespec deadline = nb_monotonic_after(timeout_ms);
    pthread_mutex_lock(&job->mu);
    while (!job->done) {
        if (pthread_cond_timedwait(&job->cv, &job->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    int result;
    if (job->done) {
        result = job->rc;
        if (result < 0 && err) {
            *err = job->err;
        }
    } else {
        job->abandoned = true;
        atomic_fetch_add(&shared->abandoned, 1);
        nb_error_set(err, NB_ERR_TIMEOUT, "libvirt call did not return within %ld ms", timeout_ms);
        nb_error_detail(err, "the call is abandoned; libvirtd may be hung");
        result = -2;
    }
    pthread_mutex_unlock(&job->mu);
    job_unref(job);
    return result;
}

/* Runs a job on 'v' with its deadline. */
static virConnectPtr connect_with_deadline(struct agent_virt *v, struct nb_error *err);

/* Returns a new reference on a live connection (the caller virConnectClose()s it): the current one,
 * or a new one when libvirtd closed it (restarted, or keep-alive gave up on it). NULL with 'err'
 * set when libvirtd cannot be reached. */
static virConnectPtr acquire_conn(struct agent_virt *v, struct nb_error *err)
{
    pthread_mutex_lock(&v->mu);
    virConnectPtr old = v->conn;
    /* virConnectIsAlive only looks at the client's state: no RPC, cannot hang. */
    if (old && virConnectIsAlive(old) == 1) {
        virConnectRef(old);
        pthread_mutex_unlock(&v->mu);
        return old;
    }
    pthread_mutex_unlock(&v->mu);
    virConnectPtr fresh = connect_with_deadline(v, err);
    if (!fresh) {
        return NULL;
    }
    pthread_mutex_lock(&v->mu);
    virConnectPtr drop = NULL;
    if (v->conn == old) {
        v->conn = fresh;
        drop = old;
        nb_info("reconnected to libvirt at \"%s\"", v->uri);
    } else {
        drop = fresh; /* another thread reconnected first */
    }
    virConnectPtr c = v->conn;
    virConnectRef(c);
    pthread_mutex_unlock(&v->mu);
    if (drop) {
        virConnectClose(drop); /* dead or unused: no RPC to wait for */
    }
    return c;
}

static int virt_job(struct agent_virt *v, int (*fn)(virConnectPtr, void *, struct nb_error *),
                    void *arg, void (*arg_free)(void *), struct nb_error *err)
{
    virConnectPtr conn = acquire_conn(v, err);
    if (!conn) {
        if (arg_free) {
            arg_free(arg);
        }
        return -2;
    }
    int rc = run_job(v->shared, conn, v->timeout_ms, atomic_load(&v->test_delay_ms), fn, arg,
                     arg_free, err);
    virConnectClose(conn);
    return rc;
}

/* ---- small helpers -------------------------------------------------------------------------- */

bool agent_virt_valid_id(const char *id)
{
    if (!id || strncmp(id, "i-", 2) != 0) {
        return false;
    }
    size_t n = 0;
    for (const char *p = id + 2; *p; p++, n++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    return n == 8 || n == 17;
}

const char *agent_virt_state_name(enum agent_virt_state state)
{
    switch (state) {
    case AGENT_VIRT_ABSENT:
        return "absent";
    case AGENT_VIRT_RUNNING:
        return "running";
    case AGENT_VIRT_PAUSED:
        return "paused";
    case AGENT_VIRT_SHUTOFF:
        return "shutoff";
    case AGENT_VIRT_CRASHED:
        return "crashed";
    case AGENT_VIRT_UNKNOWN:
        break;
    }
    return "unknown";
}

static enum agent_virt_state map_state(int st)
{
    switch (st) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
    case VIR_DOMAIN_SHUTDOWN:
        return AGENT_VIRT_RUNNING;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
        return AGENT_VIRT_PAUSED;
    case VIR_DOMAIN_SHUTOFF:
        return AGENT_VIRT_SHUTOFF;
    case VIR_DOMAIN_CRASHED:
        return AGENT_VIRT_CRASHED;
    default:
        return AGENT_VIRT_UNKNOWN;
    }
}

/* Reads our metadata of 'dom' into 'd' (state untouched). Returns 1 when the domain is ours, 0
 * when it carries no nubo metadata (or one for another id), -1 with 'err' set. */
static int read_metadata(virDomainPtr dom, struct agent_virt_domain *d, struct nb_error *err)
{
    memset(d->id, 0, sizeof d->id);
    d->tenant[0] = d->image[0] = d->host[0] = '\0';
    char *meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, AGENT_VIRT_XMLNS, 0);
    if (!meta) {
        if (last_error_code() == VIR_ERR_NO_DOMAIN_METADATA) {
            return 0;
        }
        if (last_error_code() == VIR_ERR_NO_DOMAIN) {
            return 0; /* vanished meanwhile */
        }
        set_virt_error(err, "could not read domain metadata");
        return -1;
    }
    struct agent_meta m;
    bool ok = agent_meta_parse(meta, strlen(meta), &m);
    free(meta);
    snprintf(d->id, sizeof d->id, "%s", m.id);
    snprintf(d->tenant, sizeof d->tenant, "%s", m.tenant);
    snprintf(d->image, sizeof d->image, "%s", m.image);
    snprintf(d->host, sizeof d->host, "%s", m.host);
    const char *name = virDomainGetName(dom);
    return ok && name && strcmp(name, d->id) == 0 ? 1 : 0;
}

/* Looks up 'id' and checks that it is ours. Stores the domain (NULL when absent) in '*out'; the
 * caller virDomainFree()s it. Returns 0, or -1 with 'err' set (NB_ERR_CONFLICT when not ours). */
static int lookup_ours(virConnectPtr conn, const char *id, virDomainPtr *out, struct nb_error *err)
{
    *out = NULL;
    virDomainPtr dom = virDomainLookupByName(conn, id);
    if (!dom) {
        if (last_error_code() == VIR_ERR_NO_DOMAIN) {
            return 0;
        }
        set_virt_error(err, "could not look up domain");
        return -1;
    }
    struct agent_virt_domain d;
    int rc = read_metadata(dom, &d, err);
    if (rc <= 0) {
        if (rc == 0) {
            nb_error_set(err, NB_ERR_CONFLICT,
                         "domain \"%s\" exists but is not a nubo instance, not touching it", id);
        }
        virDomainFree(dom);
        return -1;
    }
    *out = dom;
    return 0;
}

static int dom_state(virDomainPtr dom, enum agent_virt_state *state, struct nb_error *err)
{
    int st = 0;
    int reason = 0;
    if (virDomainGetState(dom, &st, &reason, 0) < 0) {
        if (last_error_code() == VIR_ERR_NO_DOMAIN) {
            *state = AGENT_VIRT_ABSENT;
            return 0;
        }
        set_virt_error(err, "could not get domain state");
        return -1;
    }
    *state = map_state(st);
    return 0;
}

/* Starts or resumes 'dom' unless it runs already. */
static int dom_run(virDomainPtr dom, const char *id, struct nb_error *err)
{
    enum agent_virt_state st;
    if (dom_state(dom, &st, err) < 0) {
        return -1;
    }
    switch (st) {
    case AGENT_VIRT_RUNNING:
        return 0;
    case AGENT_VIRT_PAUSED:
        if (virDomainResume(dom) < 0) {
            set_virt_error(err, "could not resume domain");
            return -1;
        }
        return 0;
    default:
        if (virDomainCreate(dom) < 0) {
            /* Started by someone else meanwhile: fine. */
            if (last_error_code() == VIR_ERR_OPERATION_INVALID && dom_state(dom, &st, err) == 0 &&
                st == AGENT_VIRT_RUNNING) {
                return 0;
            }
            set_virt_error(err, "could not start domain");
            nb_error_detail(err, "instance \"%s\"", id);
            return -1;
        }
        return 0;
    }
}

/* ---- open / close ----------------------------------------------------------------------------- */

struct open_arg {
    char *uri;
    int ka_interval;
    unsigned ka_count;
    virConnectPtr conn; /* out */
};

static void open_arg_free(void *p)
{
    struct open_arg *a = p;
    if (a) {
        if (a->conn) {
            virConnectClose(a->conn);
        }
        free(a->uri);
        free(a);
    }
}

static int open_fn(virConnectPtr unused, void *p, struct nb_error *err)
{
    struct open_arg *a = p;
    a->conn = virConnectOpen(a->uri);
    if (!a->conn) {
        set_virt_error(err, "could not connect to libvirt");
        if (err && err->code == NB_ERR_INTERNAL) {
            err->code = NB_ERR_UNAVAILABLE;
        }
        nb_error_detail(err, "URI \"%s\"", a->uri);
        return -1;
    }
    /* Local drivers (test://) have no keep-alive: that is fine. */
    if (a->ka_interval > 0 && virConnectSetKeepAlive(a->conn, a->ka_interval, a->ka_count) < 0) {
        virResetLastError();
    }
    return 0;
}

struct agent_virt *agent_virt_open(const struct agent_virt_config *cfg, struct nb_error *err)
{
    pthread_once(&libvirt_once, libvirt_init_once);
    struct agent_virt *v = calloc(1, sizeof *v);
    struct virt_shared *shared = calloc(1, sizeof *shared);
    if (!v || !shared) {
        abort();
    }
    atomic_init(&shared->refs, 1);
    atomic_init(&shared->abandoned, 0);
    v->shared = shared;
    v->uri = strdup(cfg->uri && *cfg->uri ? cfg->uri : DEFAULT_URI);
    v->timeout_ms = cfg->call_timeout_ms > 0 ? cfg->call_timeout_ms : DEFAULT_TIMEOUT_MS;
    v->ka_interval = cfg->keepalive_interval_s == 0 ? 5 : cfg->keepalive_interval_s;
    v->ka_count = cfg->keepalive_count ? cfg->keepalive_count : 3;
    atomic_init(&v->test_delay_ms, 0);
    pthread_mutex_init(&v->mu, NULL);
    if (!v->uri) {
        abort();
    }
    v->conn = connect_with_deadline(v, err);
    if (!v->conn) {
        pthread_mutex_destroy(&v->mu);
        free(v->uri);
        shared_unref(v->shared);
        free(v);
        return NULL;
    }
    return v;
}

/* Opens a new connection to 'v->uri' within the call deadline. Returns it, or NULL with 'err'
 * set. */
static virConnectPtr connect_with_deadline(struct agent_virt *v, struct nb_error *err)
{
    struct open_arg *a = calloc(1, sizeof *a);
    if (!a || !(a->uri = strdup(v->uri))) {
        abort();
    }
    a->ka_interval = v->ka_interval;
    a->ka_count = v->ka_count;
    int rc = run_job(v->shared, NULL, v->timeout_ms, 0, open_fn, a, open_arg_free, err);
    if (rc == -2) {
        return NULL;
    }
    virConnectPtr c = rc == 0 ? a->conn : NULL;
    a->conn = NULL;
    open_arg_free(a);
    return c;
}

struct close_arg {
    virConnectPtr conn;
};

static int close_fn(virConnectPtr unused, void *p, struct nb_error *err)
{
    struct close_arg *a = p;
    virConnectClose(a->conn);
    return 0;
}

void agent_virt_close(struct agent_virt *v)
{
    if (!v) {
        return;
    }
    struct close_arg *a = malloc(sizeof *a);
    if (!a) {
        abort();
    }
    a->conn = v->conn;
    struct nb_error err = {0};
    int rc = run_job(v->shared, NULL, v->timeout_ms, 0, close_fn, a, free, &err);
    if (rc != -2) {
        free(a);
    }
    if (rc < 0) {
        nb_warn("closing the libvirt connection: %s", err.msg);
    }
    shared_unref(v->shared);
    pthread_mutex_destroy(&v->mu);
    free(v->uri);
    free(v->probe_kernel);
    free(v->probe_initrd);
    free(v->probe_marker);
    free(v);
}

const char *agent_virt_uri(const struct agent_virt *v)
{
    return v->uri;
}

void agent_virt_set_test_delay(struct agent_virt *v, long ms)
{
    atomic_store(&v->test_delay_ms, ms);
}

int agent_virt_abandoned_calls(struct agent_virt *v)
{
    return atomic_load(&v->shared->abandoned);
}

/* ---- per-domain operations ---------------------------------------------------------------- */

/* The argument block of the per-domain jobs. */
struct dom_arg {
    char id[AGENT_VIRT_ID_MAX];
    char *xml;                   /* define_start */
    enum agent_virt_state state; /* out */
    int port;                    /* out: vnc_port */
    int op;
};

static void dom_arg_free(void *p)
{
    struct dom_arg *a = p;
    if (a) {
        free(a->xml);
        free(a);
    }
}

static struct dom_arg *dom_arg_new(const char *id, int op)
{
    struct dom_arg *a = calloc(1, sizeof *a);
    if (!a) {
        abort();
    }
    snprintf(a->id, sizeof a->id, "%s", id);
    a->op = op;
    return a;
}

enum {
    OP_DEFINE_START,
    OP_START,
    OP_SHUTDOWN,
    OP_DESTROY,
    OP_REBOOT,
    OP_TERMINATE,
    OP_STATE,
    OP_VNC
};

static int vnc_port_of(virDomainPtr dom, int *port, struct nb_error *err)
{
    char *xml = virDomainGetXMLDesc(dom, 0);
    if (!xml) {
        set_virt_error(err, "could not read live domain XML");
        return -1;
    }
    int rc = -1;
    const char *g = strstr(xml, "<graphics type='vnc'");
    const char *end = g ? strchr(g, '>') : NULL;
    const char *p = g ? strstr(g, " port='") : NULL;
    if (!g || !end || !p || p > end) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "domain has no VNC graphics");
    } else {
        char *e = NULL;
        long n = strtol(p + 7, &e, 10);
        if (e == p + 7 || *e != '\'' || n <= 0 || n > 65535) {
            nb_error_set(err, NB_ERR_CONFLICT, "domain has no VNC port assigned");
        } else {
            *port = (int)n;
            rc = 0;
        }
    }
    free(xml);
    return rc;
}

static int dom_fn(virConnectPtr conn, void *p, struct nb_error *err)
{
    struct dom_arg *a = p;
    virDomainPtr dom = NULL;
    if (lookup_ours(conn, a->id, &dom, err) < 0) {
        return -1;
    }
    int rc = -1;
    enum agent_virt_state st = AGENT_VIRT_ABSENT;
    if (!dom) {
        switch (a->op) {
        case OP_DEFINE_START:
            dom = virDomainDefineXMLFlags(conn, a->xml, VIR_DOMAIN_DEFINE_VALIDATE);
            if (!dom) {
                set_virt_error(err, "could not define domain");
                return -1;
            }
            rc = dom_run(dom, a->id, err);
            virDomainFree(dom);
            return rc;
        case OP_STATE:
        case OP_TERMINATE:
            a->state = AGENT_VIRT_ABSENT;
            return 0;
        default:
            nb_error_set(err, NB_ERR_NOT_FOUND, "no domain \"%s\"", a->id);
            return -1;
        }
    }
    if (dom_state(dom, &st, err) < 0) {
        goto cleanup;
    }
    a->state = st;
    switch (a->op) {
    case OP_DEFINE_START:
    case OP_START:
        rc = dom_run(dom, a->id, err);
        break;
    case OP_STATE:
        rc = 0;
        break;
    case OP_SHUTDOWN:
        rc = 0;
        if (st == AGENT_VIRT_RUNNING &&
            virDomainShutdownFlags(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0 &&
            virDomainShutdown(dom) < 0) {
            /* Already going down, or no ACPI: the destroy after the grace time handles it. */
            nb_debug("ACPI shutdown of \"%s\" refused: %s", a->id, virGetLastErrorMessage());
        }
        break;
    case OP_DESTROY:
        rc = 0;
        if ((st == AGENT_VIRT_RUNNING || st == AGENT_VIRT_PAUSED || st == AGENT_VIRT_UNKNOWN) &&
            virDomainDestroy(dom) < 0 && last_error_code() != VIR_ERR_OPERATION_INVALID) {
            set_virt_error(err, "could not destroy domain");
            rc = -1;
        }
        break;
    case OP_REBOOT:
        if (st != AGENT_VIRT_RUNNING && st != AGENT_VIRT_PAUSED) {
            rc = dom_run(dom, a->id, err);
            break;
        }
        rc = 0;
        if (virDomainReboot(dom, VIR_DOMAIN_REBOOT_ACPI_POWER_BTN) < 0) {
            nb_info("ACPI reboot of \"%s\" refused (%s): resetting it", a->id,
                    virGetLastErrorMessage());
            if (virDomainReset(dom, 0) < 0) {
                set_virt_error(err, "could not reset domain");
                rc = -1;
            }
        }
        break;
    case OP_TERMINATE:
        if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0 &&
            last_error_code() != VIR_ERR_OPERATION_INVALID) {
            set_virt_error(err, "could not destroy domain");
            break;
        }
        if (virDomainIsPersistent(dom) == 1) {
            unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                             VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM |
                             VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
            if (virDomainUndefineFlags(dom, flags) < 0 && last_error_code() != VIR_ERR_NO_DOMAIN &&
                /* Drivers without NVRAM or checkpoints refuse the flags. */
                virDomainUndefine(dom) < 0 && last_error_code() != VIR_ERR_NO_DOMAIN) {
                set_virt_error(err, "could not undefine domain");
                break;
            }
        }
        a->state = AGENT_VIRT_ABSENT;
        rc = 0;
        break;
    case OP_VNC:
        if (st != AGENT_VIRT_RUNNING && st != AGENT_VIRT_PAUSED) {
            nb_error_set(err, NB_ERR_CONFLICT, "domain \"%s\" is not running", a->id);
            break;
        }
        rc = vnc_port_of(dom, &a->port, err);
        break;
    default:
        nb_error_set(err, NB_ERR_INTERNAL, "unknown domain operation %d", a->op);
        break;
    }
cleanup:
    virDomainFree(dom);
    return rc;
}

/* Runs operation 'op' on 'id'; on success copies the outputs to 'state' and 'port' (may be
 * NULL). */
static int dom_op(struct agent_virt *v, const char *id, int op, const char *xml,
                  enum agent_virt_state *state, int *port, struct nb_error *err)
{
    if (!agent_virt_valid_id(id)) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" is not an instance id", id ? id : "");
        return -1;
    }
    struct dom_arg *a = dom_arg_new(id, op);
    if (xml && !(a->xml = strdup(xml))) {
        abort();
    }
    int rc = virt_job(v, dom_fn, a, dom_arg_free, err);
    if (rc == -2) {
        return -1; /* 'a' is not ours any more */
    }
    if (rc == 0 && state) {
        *state = a->state;
    }
    if (rc == 0 && port) {
        *port = a->port;
    }
    dom_arg_free(a);
    return rc;
}

int agent_virt_define_start(struct agent_virt *v, const char *id, const char *xml,
                            struct nb_error *err)
{
    return dom_op(v, id, OP_DEFINE_START, xml, NULL, NULL, err);
}

int agent_virt_start(struct agent_virt *v, const char *id, struct nb_error *err)
{
    return dom_op(v, id, OP_START, NULL, NULL, NULL, err);
}

int agent_virt_reboot(struct agent_virt *v, const char *id, struct nb_error *err)
{
    return dom_op(v, id, OP_REBOOT, NULL, NULL, NULL, err);
}

int agent_virt_terminate(struct agent_virt *v, const char *id, struct nb_error *err)
{
    return dom_op(v, id, OP_TERMINATE, NULL, NULL, NULL, err);
}

int agent_virt_state(struct agent_virt *v, const char *id, enum agent_virt_state *state,
                     struct nb_error *err)
{
    return dom_op(v, id, OP_STATE, NULL, state, NULL, err);
}

int agent_virt_vnc_port(struct agent_virt *v, const char *id, int *port, struct nb_error *err)
{
    return dom_op(v, id, OP_VNC, NULL, NULL, port, err);
}

int agent_virt_stop(struct agent_virt *v, const char *id, long grace_ms, bool *forced,
                    struct nb_error *err)
{
    if (forced) {
        *forced = false;
    }
    enum agent_virt_state st;
    if (dom_op(v, id, OP_STATE, NULL, &st, NULL, err) < 0) {
        return -1;
    }
    if (st == AGENT_VIRT_ABSENT) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "no domain \"%s\"", id);
        return -1;
    }
    if (st == AGENT_VIRT_SHUTOFF || st == AGENT_VIRT_CRASHED) {
        return 0;
    }
    if (grace_ms > 0 && st == AGENT_VIRT_RUNNING) {
        if (dom_op(v, id, OP_SHUTDOWN, NULL, &st, NULL, err) < 0) {
            return -1;
        }
        long deadline = nb_monotonic_ms() + grace_ms;
        while (nb_monotonic_ms() < deadline) {
            struct timespec ts = {0, STOP_POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
            if (dom_op(v, id, OP_STATE, NULL, &st, NULL, err) < 0) {
                return -1;
            }
            if (st != AGENT_VIRT_RUNNING && st != AGENT_VIRT_PAUSED) {
                return 0;
            }
        }
    }
    if (dom_op(v, id, OP_DESTROY, NULL, NULL, NULL, err) < 0) {
        return -1;
    }
    if (forced) {
        *forced = true;
    }
    return 0;
}

/* ---- list, stats, node ------------------------------------------------------------------------ */

struct list_arg {
    bool want_stats;
    struct agent_virt_domain *doms; /* out */
    struct agent_virt_stats *stats; /* out */
    size_t n;
};

static void list_arg_free(void *p)
{
    struct list_arg *a = p;
    if (a) {
        free(a->doms);
        free(a->stats);
        free(a);
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static uint64_t param_u64(const virTypedParameter *p)
{
    switch (p->type) {
    case VIR_TYPED_PARAM_INT:
        return p->value.i < 0 ? 0 : (uint64_t)p->value.i;
    case VIR_TYPED_PARAM_UINT:
        return p->value.ui;
    case VIR_TYPED_PARAM_LLONG:
        return p->value.l < 0 ? 0 : (uint64_t)p->value.l;
    case VIR_TYPED_PARAM_ULLONG:
        return p->value.ul;
    default:
        return 0;
    }
}

static void fill_stats(const virDomainStatsRecord *r, struct agent_virt_stats *s)
{
    for (int i = 0; i < r->nparams; i++) {
        const virTypedParameter *p = &r->params[i];
        uint64_t val = param_u64(p);
        if (strcmp(p->field, "state.state") == 0) {
            s->state = map_state((int)val);
        } else if (strcmp(p->field, "cpu.time") == 0) {
            s->cpu_time_ns = val;
        } else if (strcmp(p->field, "balloon.current") == 0) {
            s->memory_kib = val;
        } else if (strcmp(p->field, "balloon.rss") == 0) {
            s->memory_rss_kib = val;
        } else if (strncmp(p->field, "block.", 6) == 0 && ends_with(p->field, ".rd.bytes")) {
            s->block_rd_bytes += val;
        } else if (strncmp(p->field, "block.", 6) == 0 && ends_with(p->field, ".wr.bytes")) {
            s->block_wr_bytes += val;
        } else if (strncmp(p->field, "net.", 4) == 0 && ends_with(p->field, ".rx.bytes")) {
            s->net_rx_bytes += val;
        } else if (strncmp(p->field, "net.", 4) == 0 && ends_with(p->field, ".tx.bytes")) {
            s->net_tx_bytes += val;
        }
    }
}

static int list_fn(virConnectPtr conn, void *p, struct nb_error *err)
{
    struct list_arg *a = p;
    virDomainPtr *all = NULL;
    int n = virConnectListAllDomains(conn, &all, 0);
    if (n < 0) {
        set_virt_error(err, "could not list domains");
        return -1;
    }
    int rc = -1;
    virDomainPtr *ours = calloc((size_t)n + 1, sizeof *ours);
    a->doms = calloc((size_t)n + 1, sizeof *a->doms);
    if (!ours || !a->doms) {
        abort();
    }
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        struct agent_virt_domain *d = &a->doms[k];
        int r = read_metadata(all[i], d, err);
        if (r < 0) {
            goto cleanup;
        }
        if (r == 0 || dom_state(all[i], &d->state, err) < 0) {
            if (r == 0) {
                continue;
            }
            goto cleanup;
        }
        if (d->state == AGENT_VIRT_ABSENT) {
            continue; /* undefined meanwhile */
        }
        ours[k++] = all[i];
    }
    a->n = k;
    if (a->want_stats && k > 0) {
        a->stats = calloc(k, sizeof *a->stats);
        if (!a->stats) {
            abort();
        }
        for (size_t i = 0; i < k; i++) {
            snprintf(a->stats[i].id, sizeof a->stats[i].id, "%s", a->doms[i].id);
            snprintf(a->stats[i].host, sizeof a->stats[i].host, "%s", a->doms[i].host);
            a->stats[i].state = a->doms[i].state;
        }
        virDomainStatsRecordPtr *recs = NULL;
        unsigned types = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL |
                         VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_BLOCK |
                         VIR_DOMAIN_STATS_INTERFACE;
        int nrec = virDomainListGetStats(ours, types, &recs, 0);
        if (nrec < 0) {
            set_virt_error(err, "could not get domain stats");
            goto cleanup;
        }
        for (int i = 0; i < nrec; i++) {
            const char *name = virDomainGetName(recs[i]->dom);
            for (size_t j = 0; name && j < k; j++) {
                if (strcmp(a->stats[j].id, name) == 0) {
                    fill_stats(recs[i], &a->stats[j]);
                }
            }
        }
        virDomainStatsRecordListFree(recs);
    }
    rc = 0;
cleanup:
    for (int i = 0; i < n; i++) {
        virDomainFree(all[i]);
    }
    free(all);
    free(ours);
    return rc;
}

static int list_or_stats(struct agent_virt *v, bool want_stats, struct list_arg **out,
                         struct nb_error *err)
{
    struct list_arg *a = calloc(1, sizeof *a);
    if (!a) {
        abort();
    }
    a->want_stats = want_stats;
    int rc = virt_job(v, list_fn, a, list_arg_free, err);
    if (rc < 0) {
        if (rc == -1) {
            list_arg_free(a);
        }
        return -1;
    }
    *out = a;
    return 0;
}

int agent_virt_list(struct agent_virt *v, struct agent_virt_domain **out, size_t *n,
                    struct nb_error *err)
{
    struct list_arg *a;
    *out = NULL;
    *n = 0;
    if (list_or_stats(v, false, &a, err) < 0) {
        return -1;
    }
    if (a->n > 0) {
        *out = a->doms;
        *n = a->n;
        a->doms = NULL;
    }
    list_arg_free(a);
    return 0;
}

int agent_virt_stats(struct agent_virt *v, struct agent_virt_stats **out, size_t *n,
                     struct nb_error *err)
{
    struct list_arg *a;
    *out = NULL;
    *n = 0;
    if (list_or_stats(v, true, &a, err) < 0) {
        return -1;
    }
    if (a->n > 0) {
        *out = a->stats;
        *n = a->n;
        a->stats = NULL;
    }
    list_arg_free(a);
    return 0;
}

struct node_arg {
    struct agent_virt_node node;
};

static int node_fn(virConnectPtr conn, void *p, struct nb_error *err)
{
    struct node_arg *a = p;
    virNodeInfo info;
    if (virNodeGetInfo(conn, &info) < 0) {
        set_virt_error(err, "could not get node info");
        return -1;
    }
    a->node.cpus = info.cpus;
    a->node.memory_mib = info.memory / 1024;
    snprintf(a->node.model, sizeof a->node.model, "%s", info.model);
    return 0;
}

int agent_virt_node_info(struct agent_virt *v, struct agent_virt_node *out, struct nb_error *err)
{
    struct node_arg *a = calloc(1, sizeof *a);
    if (!a) {
        abort();
    }
    int rc = virt_job(v, node_fn, a, free, err);
    if (rc == -2) {
        return -1;
    }
    if (rc == 0) {
        *out = a->node;
    }
    free(a);
    return rc;
}

/* ---- KVM probe ---------------------------------------------------------------------------- */

int agent_virt_boot_sector(const char *marker, unsigned char out[512])
{
    /* 16-bit real mode, loaded at 0000:7C00 by the BIOS:
     *   cli; xor ax,ax; mov ds,ax; cld; mov si,MSG; mov dx,0x3f8
     *   L: lodsb; test al,al; jz H; out dx,al; jmp L
     *   H: hlt; jmp H
     * QEMU's 16550 accepts bytes without any set-up, so no UART initialisation. */
    static const unsigned char code[] = {
        0xFA, 0x31, 0xC0, 0x8E, 0xD8, 0xFC, 0xBE, 0x00, 0x00, 0xBA, 0xF8, 0x03,
        0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xF4, 0xEB, 0xFD,
    };
    size_t len = strlen(marker);
    if (len > 400) {
        return -1;
    }
    memset(out, 0, 512);
    memcpy(out, code, sizeof code);
    unsigned msg = 0x7C00 + (unsigned)sizeof code;
    out[7] = (unsigned char)(msg & 0xFF);
    out[8] = (unsigned char)(msg >> 8);
    memcpy(out + sizeof code, marker, len);
    out[510] = 0x55;
    out[511] = 0xAA;
    return 0;
}

struct probe_arg {
    char name[64];
    char *xml;
};

static void probe_arg_free(void *p)
{
    struct probe_arg *a = p;
    if (a) {
        free(a->xml);
        free(a);
    }
}

static int probe_create_fn(virConnectPtr conn, void *p, struct nb_error *err)
{
    struct probe_arg *a = p;
    virDomainPtr dom = virDomainCreateXML(conn, a->xml, 0);
    if (!dom) {
        set_virt_error(err, "could not create the KVM probe domain");
        return -1;
    }
    virDomainFree(dom);
    return 0;
}

static int probe_destroy_fn(virConnectPtr conn, void *p, struct nb_error *err)
{
    struct probe_arg *a = p;
    virDomainPtr dom = virDomainLookupByName(conn, a->name);
    if (dom) {
        virDomainDestroy(dom);
        virDomainFree(dom);
    }
    virResetLastError();
    return 0;
}

static bool file_contains(const char *path, const char *needle)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    /* The log may hold NULs or noise before the marker. */
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\0') {
            buf[i] = ' ';
        }
    }
    return strstr(buf, needle) != NULL;
}

/* Writes 'len' bytes to a new file 'path' with mode 0644. Returns 0, or -1 with errno set. */
static int write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = write(fd, data, len);
    int saved = errno;
    close(fd);
    if (n != (ssize_t)len) {
        errno = n < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}

void agent_virt_set_probe_guest(struct agent_virt *v, const char *kernel, const char *initrd,
                                const char *marker)
{
    free(v->probe_kernel);
    free(v->probe_initrd);
    free(v->probe_marker);
    v->probe_kernel = kernel && *kernel ? strdup(kernel) : NULL;
    v->probe_initrd = initrd && *initrd ? strdup(initrd) : NULL;
    v->probe_marker = strdup(marker && *marker ? marker : "NUBO-GUEST-READY");
}

/* Boots the probe. Returns true when the marker appeared. Logs why not otherwise. */
static bool probe_kvm(struct agent_virt *v, const char *workdir, long timeout_ms)
{
    const char *marker = v->probe_kernel ? v->probe_marker : "NUBO-KVM-PROBE-OK";
    char disk[4096];
    char log[4096];
    snprintf(disk, sizeof disk, "%s/nubo-kvm-probe.img", workdir);
    snprintf(log, sizeof log, "%s/nubo-kvm-probe.log", workdir);
    unsigned char sector[512];
    agent_virt_boot_sector(marker, sector);
    unlink(log);
    if (write_file(disk, sector, sizeof sector) < 0) {
        nb_warn("KVM probe: could not write \"%s\": %s", disk, strerror(errno));
        return false;
    }
    struct probe_arg *a = calloc(1, sizeof *a);
    if (!a) {
        abort();
    }
    snprintf(a->name, sizeof a->name, "nubo-kvm-probe-%ld", (long)getpid());
    /* The CPU model is the one agent_domxml_build() gives KVM instances (host-model), so that the
     * probe fails where instances would (on this kind of nested host, KVM guests die on MSRs). */
    char *initrd = NULL;
    if (v->probe_initrd && asprintf(&initrd, "<initrd>%s</initrd>", v->probe_initrd) < 0) {
        abort();
    }
    if (v->probe_kernel) {
        if (asprintf(&a->xml,
                     "<domain type='kvm'><name>%s</name><memory unit='MiB'>256</memory>"
                     "<vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type>"
                     "<kernel>%s</kernel>%s<cmdline>console=ttyS0 quiet panic=-1</cmdline></os>"
                     "<features><acpi/><apic/></features><cpu mode='host-model'/>"
                     "<on_poweroff>destroy</on_poweroff><on_crash>destroy</on_crash>"
                     "<devices><serial type='file'><source path='%s'/><target port='0'/>"
                     "</serial><memballoon model='none'/></devices></domain>",
                     a->name, v->probe_kernel, initrd ? initrd : "", log) < 0) {
            abort();
        }
    } else if (asprintf(&a->xml,
                        "<domain type='kvm'><name>%s</name><memory unit='MiB'>32</memory>"
                        "<vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type>"
                        "<boot dev='hd'/></os><cpu mode='host-model'/>"
                        "<on_poweroff>destroy</on_poweroff><on_crash>destroy</on_crash>"
                        "<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                        "<source file='%s'/><target dev='sda' bus='sata'/></disk>"
                        "<serial type='file'><source path='%s'/><target port='0'/></serial>"
                        "<memballoon model='none'/></devices></domain>",
                        a->name, disk, log) < 0) {
        abort();
    }
    char name[64];
    snprintf(name, sizeof name, "%s", a->name);
    struct nb_error err = {0};
    bool ok = false;
    int rc = virt_job(v, probe_create_fn, a, probe_arg_free, &err);
    if (rc == -2) {
        a = NULL; /* not ours any more */
    }
    if (rc < 0) {
        nb_info("KVM probe: %s", err.msg);
    } else {
        long deadline = nb_monotonic_ms() + (v->probe_kernel ? 2 * timeout_ms : timeout_ms);
        while (!(ok = file_contains(log, marker)) && nb_monotonic_ms() < deadline) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (!ok) {
            nb_info("KVM probe: no output from the guest within %ld ms", timeout_ms);
        }
    }
    if (a) {
        probe_arg_free(a);
    }
    struct probe_arg *d = calloc(1, sizeof *d);
    if (!d) {
        abort();
    }
    snprintf(d->name, sizeof d->name, "%s", name);
    if (virt_job(v, probe_destroy_fn, d, probe_arg_free, &err) != -2) {
        probe_arg_free(d);
    }
    unlink(disk);
    unlink(log);
    free(initrd);
    return ok;
}

const char *agent_virt_choose_type(struct agent_virt *v, const char *mode, const char *workdir,
                                   long timeout_ms)
{
    if (mode && strcmp(mode, "kvm") == 0) {
        return "kvm";
    }
    if (mode && strcmp(mode, "qemu") == 0) {
        return "qemu";
    }
    if (mode && *mode && strcmp(mode, "auto") != 0) {
        nb_warn("virt type \"%s\" is not kvm, qemu or auto: probing", mode);
    }
    bool kvm = probe_kvm(v, workdir, timeout_ms > 0 ? timeout_ms : 5000);
    nb_info("KVM probe: %s", kvm ? "KVM works, using type kvm" : "using type qemu (TCG)");
    return kvm ? "kvm" : "qemu";
}

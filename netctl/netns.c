/* Helpers for the services that run in network namespaces (see netns.h). */
#include "netns.h"

#include "nubo/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSFS_BATCH 32

int nc_netns_call(const char *netns, int (*fn)(const void *), const void *arg, struct nb_error *err)
{
    int nsfd = -1;
    if (netns) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, NC_NETNS_DIR "/%s", netns);
        nsfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0) {
            nb_error_errno(err, errno, "could not open network namespace \"%s\"", netns);
            return -1;
        }
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0) {
            _exit(126);
        }
        _exit(fn(arg));
    }
    int saved = errno;
    if (nsfd >= 0) {
        close(nsfd);
    }
    if (pid < 0) {
        nb_error_errno(err, saved, "could not fork");
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}

static int child_link_missing(const void *arg)
{
    return if_nametoindex((const char *)arg) ? 0 : 1;
}

int nc_netns_link_exists(const char *netns, const char *ifname, struct nb_error *err)
{
    int rc = nc_netns_call(netns, child_link_missing, ifname, err);
    if (rc < 0) {
        return -1;
    }
    if (rc > 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not enter network namespace \"%s\"",
                     netns ? netns : "(own)");
        return -1;
    }
    return rc == 0;
}

int nc_netns_tx_csum_off(const char *ifname)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        return -1;
    }
    struct ethtool_value ev = {.cmd = ETHTOOL_STXCSUM, .data = 0};
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    ifr.ifr_data = (void *)&ev;
    int rc = ioctl(s, SIOCETHTOOL, &ifr);
    close(s);
    return rc;
}

bool nc_netns_file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

bool nc_netns_same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

int nc_netns_make_dir(const char *path, struct nb_error *err)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        nb_error_errno(err, errno, "could not create directory \"%s\"", path);
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int nc_netns_remove_tree(const char *path, struct nb_error *err)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT) {
        nb_error_errno(err, errno, "could not remove \"%s\"", path);
        return -1;
    }
    return 0;
}

int nc_netns_write_proc(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t len = strlen(text);
    int rc = fd >= 0 && write(fd, text, len) == (ssize_t)len ? 0 : -1;
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

bool nc_netns_proc_alive(pid_t pid, char comm[32])
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    text[n] = '\0';
    /* "pid (comm) S ...": the command name may contain anything, so the last ')' ends it. */
    char *open_paren = strchr(text, '(');
    char *close_paren = strrchr(text, ')');
    if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ') {
        return false;
    }
    if (comm) {
        size_t len = (size_t)(close_paren - open_paren - 1);
        len = len > 31 ? 31 : len;
        memcpy(comm, open_paren + 1, len);
        comm[len] = '\0';
    }
    char state = close_paren[2];
    return state != 'Z' && state != 'X' && state != 'x';
}

/* Decodes the octal escapes (\040 for a space) of a path in /proc/self/mountinfo, in place. */
static void unescape_mount_path(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Collects into 'paths' up to NSFS_BATCH mount points of nsfs file systems (namespaces pinned by
 * "ip netns add" and the like) from /proc/self/mountinfo. Async-signal-safe. Returns how many. */
static int find_nsfs_mounts(char paths[NSFS_BATCH][256])
{
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buf[8192] = {0};
    size_t len = 0;
    int found = 0;
    bool eof = false;
    while (found < NSFS_BATCH) {
        char *nl = len ? memchr(buf, '\n', len) : NULL;
        if (!nl) {
            if (eof || len == sizeof buf) {
                break; /* the end, or a line too long to be ours */
            }
            ssize_t r = read(fd, buf + len, sizeof buf - len);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                eof = true;
            } else {
                len += (size_t)r;
            }
            continue;
        }
        *nl = '\0';
        /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
        char *sep = strstr(buf, " - ");
        char *field = buf;
        for (int i = 0; i < 4 && field; i++) {
            field = strchr(field, ' ');
            field = field ? field + 1 : NULL;
        }
        char *end = field ? strchr(field, ' ') : NULL;
        if (sep && end && strncmp(sep + 3, "nsfs ", 5) == 0 && end - field < 255) {
            memcpy(paths[found], field, (size_t)(end - field));
            paths[found][end - field] = '\0';
            unescape_mount_path(paths[found]);
            found++;
        }
        size_t used = (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, len - used);
        len -= used;
    }
    close(fd);
    return found;
}

void nc_netns_detach_nsfs_mounts(void)
{
    char paths[NSFS_BATCH][256];
    for (int pass = 0; pass < 64; pass++) {
        int n = find_nsfs_mounts(paths);
        int detached = 0;
        for (int i = 0; i < n; i++) {
            detached += umount2(paths[i], MNT_DETACH) == 0;
        }
        if (n < NSFS_BATCH || detached == 0) {
            return;
        }
    }
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int nc_netns_list_dir(const char *dir, bool (*keep)(const char *name), const char *what,
                      char ***names, size_t *n, struct nb_error *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            return 0;
        }
        nb_error_errno(err, errno, "could not open %s \"%s\"", what, dir);
        return -1;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!keep(e->d_name)) {
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            char **grown = realloc(*names, cap * sizeof **names);
            if (!grown) {
                abort();
            }
            *names = grown;
        }
        if (!((*names)[*n] = strdup(e->d_name))) {
            abort();
        }
        (*n)++;
    }
    closedir(d);
    if (*n > 1) {
        qsort(*names, *n, sizeof **names, compare_strings);
    }
    return 0;
}

void nc_netns_list_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++) {
        free(names[i]);
    }
    free(names);
}

/* The state_dir JSON documents of statefile.h. */
#include "token/statefile.h"

#include <openssl/rand.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char *statefile__errf(const char *fmt, const char *a, const char *b)
{
    char *s = NULL;
    if (asprintf(&s, fmt, a, b) < 0)
        return NULL;
    return s;
}

void statefile_stamp(const char *state_dir, const char *name, struct statefile_stamp *st)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", state_dir, name);
    st->mtime_ns = 0;
    st->ino = 0;
    if (stat(path, &sb) == 0) {
        st->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
        st->ino = (uint64_t)sb.st_ino;
    }
}

bool statefile_same(const struct statefile_stamp *a, const struct statefile_stamp *b)
{
    return a->mtime_ns == b->mtime_ns && a->ino == b->ino;
}

json_t *statefile_read(const char *state_dir, const char *name, char **err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", state_dir, name);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (access(path, F_OK) != 0)
            return json_object();
        *err = statefile__errf("%s: %s", path, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *err = statefile__errf("%s: %s", path, "not a JSON object");
        return NULL;
    }
    return root;
}

int statefile_update(const char *state_dir, const char *name, int (*update)(json_t *doc, void *arg),
                     void *arg, char **err)
{
    char path[4200], lock[4300], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", state_dir, name);
    snprintf(lock, sizeof lock, "%s/.%s.lock", state_dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.%d.%lx.tmp", state_dir, name, (int)getpid(), (unsigned long)pthread_self());
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
        *err = statefile__errf("cannot lock %s: %s", lock, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    int rc = -1;
    json_t *root = statefile_read(state_dir, name, err);
    if (!root)
        goto out;
    rc = update(root, arg);
    if (rc != 1)
        goto out;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || json_dumpfd(root, fd, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || fsync(fd) != 0) {
        *err = statefile__errf("cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        rc = -1;
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        *err = statefile__errf("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        rc = -1;
    }
out:
    json_decref(root);
    close(lfd); /* releases the lock */
    return rc;
}

/* mkdir -p with mode 0700 for what it creates; refuses a state_dir others can write. */
int statefile_mkdirs(const char *path)
{
    char tmp[4096];
    if (strlen(path) >= sizeof tmp)
        return -ENAMETOOLONG;
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int statefile_secret(const char *dir, unsigned char out[32])
{
    char path[4096];
    snprintf(path, sizeof path, "%s/secret", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, out, 32);
        close(fd);
        return n == 32 ? 0 : -EINVAL;
    }
    if (errno != ENOENT)
        return -errno;
    if (RAND_bytes(out, 32) != 1)
        return -EIO;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, out, 32);
    int rc = (w == 32 && fsync(fd) == 0) ? 0 : -EIO;
    close(fd);
    if (rc == 0 && link(tmp, path) != 0) /* lost a race: use the winner's */
        rc = errno == EEXIST ? 1 : -errno;
    unlink(tmp);
    return rc == 1 ? statefile_secret(dir, out) : rc;
}

/* The CLI's token store (SPEC.md §7): one JSON file per host, atomic writes, flock. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char *cli_store_dir(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char *dir = NULL, *parent = NULL;
    if (xdg && *xdg == '/') {
        if (asprintf(&parent, "%s", xdg) < 0 || asprintf(&dir, "%s/latch", xdg) < 0)
            goto fail;
    } else if (home && *home) {
        if (asprintf(&parent, "%s/.config", home) < 0 || asprintf(&dir, "%s/.config/latch", home) < 0)
            goto fail;
    } else {
        fprintf(stderr, "latch: neither XDG_CONFIG_HOME nor HOME is set: cannot store tokens\n");
        return NULL;
    }
    mkdir(parent, 0700);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "latch: cannot create %s: %s\n", dir, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        fprintf(stderr, "latch: %s is not a directory of yours: refusing to store tokens there\n", dir);
        goto fail;
    }
    if ((st.st_mode & 077) && chmod(dir, 0700) != 0) {
        fprintf(stderr, "latch: cannot make %s private (0700)\n", dir);
        goto fail;
    }
    free(parent);
    return dir;
fail:
    free(parent);
    free(dir);
    return NULL;
}

json_t *cli_store_read(const char *dir, const char *key)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, key);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int cli_store_write(const char *dir, const char *key, json_t *rec)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s.json", dir, key);
    snprintf(tmp, sizeof tmp, "%s/.%s.%d.tmp", dir, key, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = json_dumpfd(rec, fd, JSON_INDENT(2)) == 0 && write(fd, "\n", 1) == 1 && fsync(fd) == 0 ? 0 : -1;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int cli_store_remove(const char *dir, const char *key)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, key);
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int cli_store_lock(const char *dir, const char *key)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.lock", dir, key);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

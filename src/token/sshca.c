/* The CA files of sshca.h. */
#include "token/sshca.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *sshca__errf(const char *fmt, const char *a, const char *b)
{
    char *s = NULL;
    if (asprintf(&s, fmt, a, b) < 0)
        return NULL;
    return s;
}

static bool sshca__plain(const char *s, size_t n)
{
    if (!n || n > 64 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr("_-.", s[i])))
            return false;
    return true;
}

int sshca_file_stem(const char *app, char out[SSHCA_FILE_MAX])
{
    size_t n = strlen(app);
    if (sshca__plain(app, n)) {
        memcpy(out, app, n + 1);
        return 0;
    }
    if (!n || n > 128)
        return -1;
    out[0] = '%';
    for (size_t i = 0; i < n; i++)
        snprintf(out + 1 + 2 * i, 3, "%02x", (unsigned char)app[i]);
    return 0;
}

bool sshca_stem_ok(const char *stem)
{
    size_t n = strlen(stem);
    if (stem[0] != '%')
        return sshca__plain(stem, n);
    if (n < 3 || n > 257 || (n - 1) % 2)
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((stem[i] >= '0' && stem[i] <= '9') || (stem[i] >= 'a' && stem[i] <= 'f')))
            return false;
    return true;
}

static EVP_PKEY *sshca__read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k && EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

bool sshca_pem_ok(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    bool ok = k && EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;
    EVP_PKEY_free(k);
    BIO_free(bio);
    return ok;
}

/* Run as root for a daemon of another user (`latchd ssh-ca` by an administrator): the file is
 * given to state_dir's owner, who must read it. */
static void sshca__own(int fd, const char *path, const char *state_dir)
{
    struct stat st;
    if (geteuid() != 0 || stat(state_dir, &st) != 0 || st.st_uid == 0)
        return;
    int rc = fd >= 0 ? fchown(fd, st.st_uid, st.st_gid) : chown(path, st.st_uid, st.st_gid);
    (void)rc; /* failing that, the daemon says it cannot read the file */
}

/* A new key into a temporary file, then link()ed to `path`: an existing CA is never replaced. */
static int sshca__make(const char *state_dir, const char *dir, const char *path, char **err)
{
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s/.new.%d.tmp", dir, (int)getpid());
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    int fd = k ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        EVP_PKEY_free(k);
        *err = sshca__errf("cannot make an SSH CA key in %s%s", dir, "");
        return -1;
    }
    bool ok = PEM_write_PKCS8PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    sshca__own(fileno(f), tmp, state_dir);
    fclose(f);
    EVP_PKEY_free(k);
    int rc = ok && (link(tmp, path) == 0 || errno == EEXIST) ? 0 : -1;
    unlink(tmp);
    if (rc != 0)
        *err = sshca__errf("cannot write %s: %s", path, strerror(errno));
    return rc;
}

EVP_PKEY *sshca_load(const char *state_dir, const char *app, bool create, char **err)
{
    char stem[SSHCA_FILE_MAX], dir[4200], path[4600];
    if (sshca_file_stem(app, stem) != 0) {
        *err = sshca__errf("app name '%.64s…' is too long for an SSH CA file%s", app, "");
        return NULL;
    }
    snprintf(dir, sizeof dir, "%s/" SSHCA_DIR, state_dir);
    snprintf(path, sizeof path, "%s/%s.pem", dir, stem);
    if (access(path, F_OK) != 0) {
        if (!create) {
            *err = sshca__errf("app '%s' has no SSH CA yet (%s)", app, path);
            return NULL;
        }
        if (mkdir(dir, 0700) == 0)
            sshca__own(-1, dir, state_dir);
        else if (errno != EEXIST) {
            *err = sshca__errf("cannot create %s: %s", dir, strerror(errno));
            return NULL;
        }
        if (sshca__make(state_dir, dir, path, err) != 0)
            return NULL;
    }
    EVP_PKEY *k = sshca__read(path);
    if (!k)
        *err = sshca__errf("%s is not an Ed25519 private key (app '%s')", path, app);
    return k;
}

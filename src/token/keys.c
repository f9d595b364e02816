/* Key files, rotation and the certs document of keys.h. */
#include "token/keys.h"

#include "core/base64url.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEYS_BITS 2048

static char *keys__certs_json(const struct keyset *ks);

static char *keys__errf(const char *fmt, const char *a)
{
    char *s = NULL;
    if (asprintf(&s, fmt, a) < 0)
        return NULL;
    return s;
}

static char *keys__bn_b64url(const EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
        return NULL;
    size_t n = (size_t)BN_num_bytes(bn);
    unsigned char *buf = malloc(n ? n : 1);
    char *s = NULL;
    if (buf) {
        BN_bn2bin(bn, buf);
        s = b64url_encode_dup(buf, n);
        free(buf);
    }
    BN_free(bn);
    return s;
}

static int keys__kid(EVP_PKEY *pkey, char out[33])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pkey, &der);
    if (len <= 0)
        return -1;
    unsigned char md[32];
    EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    return 0;
}

int keys_pem_kid(const char *pem, size_t len, char kid[33])
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    int rc = pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) >= 2048
                 ? keys__kid(pkey, kid)
                 : -1;
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return rc;
}

/* A self-signed certificate around the key: some JWT libraries want a certificate. */
static char *keys__cert(EVP_PKEY *pkey, const char *kid, time_t created)
{
    X509 *x = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (!x || !bio)
        goto out;
    X509_set_version(x, 2);
    unsigned char serial[16];
    randombytes_buf(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &created);
    X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, &created);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"latch", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)kid, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, pkey);
    if (!X509_sign(x, pkey, EVP_sha256()) || !PEM_write_bio_X509(bio, x))
        goto out;
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    pem = malloc((size_t)len + 1);
    if (pem) {
        memcpy(pem, data, (size_t)len);
        pem[len] = '\0';
    }
out:
    X509_free(x);
    BIO_free(bio);
    return pem;
}

/* Writes a new key as keys/<kid>.pem (0600, atomically). */
static int keys__generate(const char *dir, char **err)
{
    EVP_PKEY *pkey = EVP_RSA_gen(KEYS_BITS);
    char kid[33], path[4200], tmp[4300];
    int rc = -1;
    if (!pkey || keys__kid(pkey, kid) != 0) {
        *err = keys__errf("cannot generate a signing key%s", "");
        goto out;
    }
    snprintf(path, sizeof path, "%s/%s.pem", dir, kid);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, kid);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        *err = keys__errf("cannot write %s", tmp);
        goto out;
    }
    bool ok = PEM_write_PKCS8PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    fclose(f);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        *err = keys__errf("cannot write %s", path);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    return rc;
}

static void keys__free_key(struct signing_key *k)
{
    EVP_PKEY_free(k->pkey);
    free(k->cert_pem);
    free(k->jwk_n);
    free(k->jwk_e);
}

static int keys__cmp_newest(const void *a, const void *b)
{
    const struct signing_key *x = a, *y = b;
    if (x->created_ns != y->created_ns)
        return x->created_ns > y->created_ns ? -1 : 1;
    return strcmp(x->kid, y->kid);
}

/* Reads keys/<kid>.pem; the file name must be the key's own kid (a renamed file is refused). */
static int keys__read_dir(const char *dir, struct keyset *ks, char **err)
{
    DIR *d = opendir(dir);
    if (!d) {
        *err = keys__errf("cannot open %s", dir);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != 36 || strcmp(e->d_name + 32, ".pem"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        struct stat st;
        if (!f || fstat(fileno(f), &st) != 0) {
            if (f)
                fclose(f);
            continue;
        }
        EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        struct signing_key k = { .pkey = pkey, .created = st.st_mtime,
                                 .created_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec };
        if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA || EVP_PKEY_get_bits(pkey) < 2048 ||
            keys__kid(pkey, k.kid) != 0 || strncmp(k.kid, e->d_name, 32)) {
            EVP_PKEY_free(pkey);
            *err = keys__errf("%s is not a latch RS256 signing key (or was renamed)", path);
            rc = -1;
            break;
        }
        struct signing_key *nk = realloc(ks->keys, (ks->n + 1) * sizeof *nk);
        if (!nk) {
            EVP_PKEY_free(pkey);
            rc = -1;
            break;
        }
        ks->keys = nk;
        ks->keys[ks->n++] = k;
    }
    closedir(d);
    return rc;
}

/* Reads the directory into ks, newest first (keys[0] signs; the overlaps below count on it). */
static int keys__read_sorted(const char *dir, struct keyset *ks, char **err)
{
    if (keys__read_dir(dir, ks, err) != 0)
        return -1;
    if (ks->n > 1)
        qsort(ks->keys, ks->n, sizeof *ks->keys, keys__cmp_newest);
    return 0;
}

/* What keyset_stale() compares: the mtime of the keys directory, taken BEFORE the directory is
 * read. A key renamed into it during the read changes the mtime after this, so the next check
 * loads it. (Taken after the read, the mtime already included such a rename: `latchd keys
 * rotate` racing the daemon's poll left the daemon signing with the old key for good.) A change
 * within the same tick of the coarse clock that stamps files would leave the mtime equal: a
 * directory changed in the current tick is recorded as never equal, so it is read once more. */
static int keys__dir_version(const char *dir, int64_t *out)
{
    struct stat st;
    struct timespec now;
    if (stat(dir, &st) != 0 || clock_gettime(CLOCK_REALTIME_COARSE, &now) != 0)
        return -1;
    int64_t m = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    *out = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec > m ? m : m - 1;
    return 0;
}

struct keyset *keys_load(const char *state_dir, int64_t rotate_after_s, int64_t overlap_s,
                         bool force_new, char **err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/keys", state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        *err = keys__errf("cannot create %s", dir);
        return NULL;
    }
    struct keyset *ks = calloc(1, sizeof *ks);
    if (!ks)
        return NULL;
    atomic_init(&ks->refs, 1);
    time_t now = time(NULL);
    int64_t version;
    if (keys__dir_version(dir, &version) != 0) {
        *err = keys__errf("cannot stat %s", dir);
        goto fail;
    }
    if (keys__read_sorted(dir, ks, err) != 0)
        goto fail;
    if (ks->n == 0 || force_new || keyset_due(ks, rotate_after_s, now)) {
        if (keys__generate(dir, err) != 0)
            goto fail;
        ks->made = true;
        for (size_t i = 0; i < ks->n; i++)
            keys__free_key(&ks->keys[i]);
        free(ks->keys);
        ks->keys = NULL;
        ks->n = 0;
        if (keys__dir_version(dir, &version) != 0) {
            *err = keys__errf("cannot stat %s", dir);
            goto fail;
        }
        if (keys__read_sorted(dir, ks, err) != 0) /* the new key first */
            goto fail;
    }
    /* each older key verifies until `overlap` after its successor appeared */
    size_t keep = ks->n ? 1 : 0;
    for (size_t i = 1; i < ks->n; i++) {
        struct signing_key *k = &ks->keys[i];
        k->verify_until = ks->keys[i - 1].created + overlap_s;
        if (k->verify_until <= now) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s.pem", dir, k->kid);
            unlink(path);
            keys__free_key(k);
            continue;
        }
        ks->keys[keep++] = *k;
    }
    ks->n = keep;
    for (size_t i = 0; i < ks->n; i++) {
        struct signing_key *k = &ks->keys[i];
        k->cert_pem = keys__cert(k->pkey, k->kid, k->created);
        k->jwk_n = keys__bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_N);
        k->jwk_e = keys__bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_E);
        if (!k->cert_pem || !k->jwk_n || !k->jwk_e) {
            *err = keys__errf("cannot describe key %s", k->kid);
            goto fail;
        }
    }
    ks->certs_json = keys__certs_json(ks);
    if (!ks->certs_json) {
        *err = keys__errf("cannot describe the keys in %s", dir);
        goto fail;
    }
    ks->dir_mtime_ns = version;
    return ks;
fail:
    keyset_unref(ks);
    return NULL;
}

bool keyset_stale(const struct keyset *ks, const char *state_dir)
{
    char dir[4200];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/keys", state_dir);
    return stat(dir, &st) == 0 &&
           (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != ks->dir_mtime_ns;
}

void keyset_ref(struct keyset *ks)
{
    atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
}

void keyset_unref(struct keyset *ks)
{
    if (!ks || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++)
        keys__free_key(&ks->keys[i]);
    free(ks->keys);
    free(ks->certs_json);
    free(ks);
}

const struct signing_key *keyset_find(const struct keyset *ks, const char *kid, size_t kid_len, time_t now)
{
    if (kid_len != 32)
        return NULL;
    for (size_t i = 0; i < ks->n; i++) {
        const struct signing_key *k = &ks->keys[i];
        if (!memcmp(k->kid, kid, 32))
            return (k->verify_until == 0 || now < k->verify_until) ? k : NULL;
    }
    return NULL;
}

bool keyset_due(const struct keyset *ks, int64_t rotate_after_s, time_t now)
{
    return ks->n == 0 || (rotate_after_s > 0 && now - ks->keys[0].created >= rotate_after_s);
}

static char *keys__certs_json(const struct keyset *ks)
{
    json_t *root = json_object(), *keys = json_array(), *certs = json_array();
    for (size_t i = 0; i < ks->n; i++) {
        const struct signing_key *k = &ks->keys[i];
        json_array_append_new(keys, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kid", k->kid, "kty", "RSA",
                                              "alg", "RS256", "use", "sig", "e", k->jwk_e, "n", k->jwk_n));
        json_array_append_new(certs, json_pack("{s:s,s:s}", "kid", k->kid, "cert", k->cert_pem));
    }
    json_object_set_new(root, "keys", keys);
    if (ks->n)
        json_object_set_new(root, "public_cert",
                            json_pack("{s:s,s:s}", "kid", ks->keys[0].kid, "cert", ks->keys[0].cert_pem));
    json_object_set_new(root, "public_certs", certs);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

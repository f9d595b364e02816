/* Public key lines, fingerprints and user certificates of sshcert.h. */
#include "token/sshcert.h"

#include "core/sshname.h"
#include "core/strbuf.h"

#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSH_ED25519 "ssh-ed25519"
#define SSH_ECDSA_P256 "ecdsa-sha2-nistp256"
#define SSH_CERT_SUFFIX "-cert-v01@openssh.com"
#define SSH_CERT_MAX (16 * 1024)
#define SSH_CERT_TYPE_USER 1

/* Key types OpenSSH knows that are not signed here: refused as unsupported, not malformed. */
static const char *const sshcert__unsupported[] = {
    "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-xmss@openssh.com",
    "rsa-sha2-256", "rsa-sha2-512",
};

/* --- reading the wire format (RFC 4251 §5) --------------------------------------------------- */

struct sshcert__rd {
    const unsigned char *p;
    size_t n;
};

static bool sshcert__u32(struct sshcert__rd *r, uint32_t *v)
{
    if (r->n < 4)
        return false;
    *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    r->n -= 4;
    return true;
}

static bool sshcert__u64(struct sshcert__rd *r, uint64_t *v)
{
    uint32_t hi, lo;
    if (!sshcert__u32(r, &hi) || !sshcert__u32(r, &lo))
        return false;
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

static bool sshcert__str(struct sshcert__rd *r, const unsigned char **s, size_t *len)
{
    uint32_t l;
    if (!sshcert__u32(r, &l) || l > r->n)
        return false;
    *s = r->p;
    *len = l;
    r->p += l;
    r->n -= l;
    return true;
}

static bool sshcert__str_is(struct sshcert__rd *r, const char *want)
{
    const unsigned char *s;
    size_t len;
    return sshcert__str(r, &s, &len) && len == strlen(want) && !memcmp(s, want, len);
}

/* An uncompressed point on P-256 (SEC 1 §2.3.4): 65 bytes, 0x04, on the curve. */
static bool sshcert__p256_point_ok(const unsigned char *q, size_t len)
{
    if (len != 65 || q[0] != 0x04)
        return false;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
    bool ok = pt && EC_POINT_oct2point(g, pt, q, len, NULL) == 1 && EC_POINT_is_on_curve(g, pt, NULL) == 1 &&
              !EC_POINT_is_at_infinity(g, pt);
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return ok;
}

/* The key fields after the type name: ed25519 (string pk) or P-256 (string "nistp256",
 * string Q). */
static bool sshcert__key_fields(struct sshcert__rd *r, enum ssh_key_type type)
{
    const unsigned char *s;
    size_t len;
    if (type == SSH_KEY_ED25519)
        return sshcert__str(r, &s, &len) && len == 32;
    return sshcert__str_is(r, "nistp256") && sshcert__str(r, &s, &len) && sshcert__p256_point_ok(s, len);
}

/* --- the public key line ------------------------------------------------------------------ */

static bool sshcert__space(char c)
{
    return c == ' ' || c == '\t';
}

enum ssh_parse ssh_pubkey_parse(const char *line, size_t n, struct ssh_pubkey *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (n > SSH_PUBKEY_LINE_MAX) {
        *why = "the public key line is too long";
        return SSH_PK_MALFORMED;
    }
    if (n && line[n - 1] == '\n')
        n--;
    if (n && line[n - 1] == '\r')
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *why = "the public key line has control characters";
            return SSH_PK_MALFORMED;
        }
    }
    size_t i = 0;
    while (i < n && sshcert__space(line[i]))
        i++;
    size_t t0 = i;
    while (i < n && !sshcert__space(line[i]))
        i++;
    size_t tlen = i - t0;
    const char *type = line + t0;
    while (i < n && sshcert__space(line[i]))
        i++;
    size_t b0 = i;
    while (i < n && !sshcert__space(line[i]))
        i++;
    size_t blen = i - b0; /* the rest, if any, is the comment */
    if (!tlen || !blen) {
        *why = "not an OpenSSH public key line (\"TYPE BASE64 [COMMENT]\")";
        return SSH_PK_MALFORMED;
    }
    if (tlen == strlen(SSH_ED25519) && !memcmp(type, SSH_ED25519, tlen))
        out->type = SSH_KEY_ED25519;
    else if (tlen == strlen(SSH_ECDSA_P256) && !memcmp(type, SSH_ECDSA_P256, tlen))
        out->type = SSH_KEY_ECDSA_P256;
    if (!out->type) {
        bool known = tlen > strlen(SSH_CERT_SUFFIX) &&
                     !memcmp(type + tlen - strlen(SSH_CERT_SUFFIX), SSH_CERT_SUFFIX, strlen(SSH_CERT_SUFFIX));
        for (size_t k = 0; !known && k < sizeof sshcert__unsupported / sizeof *sshcert__unsupported; k++)
            known = tlen == strlen(sshcert__unsupported[k]) && !memcmp(type, sshcert__unsupported[k], tlen);
        *why = known ? "only ssh-ed25519 and ecdsa-sha2-nistp256 keys are signed"
                     : "not an OpenSSH public key line (unknown key type)";
        return known ? SSH_PK_UNSUPPORTED : SSH_PK_MALFORMED;
    }
    size_t blob_len = 0;
    const char *end = NULL;
    if (blen > 4 * ((SSH_PUBKEY_BLOB_MAX + 2) / 3) ||
        sodium_base642bin(out->blob, sizeof out->blob, line + b0, blen, NULL, &blob_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != line + b0 + blen) {
        *why = "the public key is not valid base64";
        return SSH_PK_MALFORMED;
    }
    struct sshcert__rd r = { out->blob, blob_len };
    const unsigned char *bt;
    size_t btl;
    if (!sshcert__str(&r, &bt, &btl) || btl != tlen || memcmp(bt, type, tlen) ||
        !sshcert__key_fields(&r, out->type) || r.n != 0) {
        *why = "the public key's data is not a key of the type the line names";
        return SSH_PK_MALFORMED;
    }
    out->blob_len = blob_len;
    *why = NULL;
    return SSH_PK_OK;
}

void ssh_pubkey_fingerprint(const struct ssh_pubkey *k, char out[SSH_FINGERPRINT_LEN])
{
    unsigned char md[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(md, k->blob, k->blob_len);
    memcpy(out, "SHA256:", 7);
    sodium_bin2base64(out + 7, SSH_FINGERPRINT_LEN - 7, md, sizeof md, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

/* --- principals ----------------------------------------------------------------------------- */

int ssh_principals_expand(const char *const *tmpl, size_t ntmpl, const char *email, const char *service,
                          char **out, size_t *n, size_t cap)
{
    const char *at = email ? strrchr(email, '@') : NULL;
    size_t local_len = at ? (size_t)(at - email) : 0;
    for (size_t i = 0; i < ntmpl; i++) {
        struct strbuf sb;
        sb_init(&sb, SSH_PRINCIPAL_MAX + 1);
        bool absent = false;
        for (const char *p = tmpl[i]; *p && !absent;) {
            const char *e = *p == '{' ? strchr(p, '}') : NULL;
            if (!e) {
                sb_add(&sb, p++, 1);
                continue;
            }
            size_t vn = (size_t)(e - p - 1);
            if (vn == 5 && !strncmp(p + 1, "email", 5))
                absent = !email || !sb_adds(&sb, email);
            else if (vn == 11 && !strncmp(p + 1, "email_local", 11))
                absent = !at || !sb_add(&sb, email, local_len);
            else if (vn == 13 && !strncmp(p + 1, "service_token", 13))
                absent = !service || !sb_adds(&sb, service);
            else
                absent = true; /* not a template the configuration allows */
            p = e + 1;
        }
        bool keep = !absent && !sb.overflow && ssh_principal_ok(sb.p ? sb.p : "", sb.len);
        for (size_t j = 0; keep && j < *n; j++)
            keep = strcmp(out[j], sb.p) != 0;
        if (keep && *n < cap) {
            out[*n] = strndup(sb.p, sb.len);
            if (!out[*n]) {
                sb_free(&sb);
                return -1;
            }
            (*n)++;
        }
        sb_free(&sb);
    }
    return 0;
}

/* --- writing the wire format ------------------------------------------------------------- */

static void sshcert__put_u32(struct strbuf *sb, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                           (unsigned char)v };
    sb_add(sb, b, 4);
}

static void sshcert__put_u64(struct strbuf *sb, uint64_t v)
{
    sshcert__put_u32(sb, (uint32_t)(v >> 32));
    sshcert__put_u32(sb, (uint32_t)v);
}

static void sshcert__put_str(struct strbuf *sb, const void *p, size_t n)
{
    sshcert__put_u32(sb, (uint32_t)n);
    sb_add(sb, p, n);
}

static void sshcert__put_cstr(struct strbuf *sb, const char *s)
{
    sshcert__put_str(sb, s, strlen(s));
}

/* The CA's blob: string "ssh-ed25519", string pk (RFC 8709 §4). */
static int sshcert__ed25519_blob(EVP_PKEY *key, struct strbuf *sb)
{
    unsigned char pk[32];
    size_t len = sizeof pk;
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519 || EVP_PKEY_get_raw_public_key(key, pk, &len) != 1 ||
        len != sizeof pk)
        return -1;
    sshcert__put_cstr(sb, SSH_ED25519);
    sshcert__put_str(sb, pk, sizeof pk);
    return sb->overflow ? -1 : 0;
}

/* "TYPE BASE64[ COMMENT]" (malloc'd). */
static char *sshcert__line(const char *type, const void *blob, size_t n, const char *comment)
{
    size_t b64 = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    size_t cap = strlen(type) + 1 + b64 + (comment ? 1 + strlen(comment) : 0) + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t at = (size_t)snprintf(s, cap, "%s ", type);
    sodium_bin2base64(s + at, cap - at, blob, n, sodium_base64_VARIANT_ORIGINAL);
    if (comment && *comment) {
        at = strlen(s);
        snprintf(s + at, cap - at, " %s", comment);
    }
    return s;
}

char *ssh_ed25519_pubkey_line(EVP_PKEY *key, const char *comment)
{
    struct strbuf sb;
    sb_init(&sb, 256);
    char *line = sshcert__ed25519_blob(key, &sb) == 0 ? sshcert__line(SSH_ED25519, sb.p, sb.len, comment) : NULL;
    sb_free(&sb);
    return line;
}

char *ssh_ed25519_private_file(EVP_PKEY *key, const char *comment)
{
    unsigned char sk[64];
    size_t sl = 32;
    struct strbuf pub, sec, all;
    sb_init(&pub, 256);
    sb_init(&sec, 1024);
    sb_init(&all, 2048);
    char *out = NULL;
    if (sshcert__ed25519_blob(key, &pub) != 0 || EVP_PKEY_get_raw_private_key(key, sk, &sl) != 1 || sl != 32)
        goto done;
    memcpy(sk + 32, pub.p + pub.len - 32, 32); /* OpenSSH keeps seed || public key */
    uint32_t check;
    randombytes_buf(&check, sizeof check);
    sshcert__put_u32(&sec, check);
    sshcert__put_u32(&sec, check);
    sshcert__put_cstr(&sec, SSH_ED25519);
    sshcert__put_str(&sec, pub.p + pub.len - 32, 32);
    sshcert__put_str(&sec, sk, 64);
    sshcert__put_cstr(&sec, comment ? comment : "");
    for (unsigned char pad = 1; sec.len % 8; pad++) /* the "none" cipher's block size */
        sb_add(&sec, &pad, 1);
    sb_add(&all, "openssh-key-v1", 15); /* with its NUL */
    sshcert__put_cstr(&all, "none");
    sshcert__put_cstr(&all, "none");
    sshcert__put_str(&all, "", 0);
    sshcert__put_u32(&all, 1);
    sshcert__put_str(&all, pub.p, pub.len);
    sshcert__put_str(&all, sec.p, sec.len);
    if (all.overflow || sec.overflow)
        goto done;
    size_t b64len = sodium_base64_ENCODED_LEN(all.len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64len);
    struct strbuf pem;
    sb_init(&pem, 4096);
    if (b64) {
        sodium_bin2base64(b64, b64len, (const unsigned char *)all.p, all.len, sodium_base64_VARIANT_ORIGINAL);
        sb_adds(&pem, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
        for (size_t i = 0, n = strlen(b64); i < n; i += 70) {
            sb_add(&pem, b64 + i, n - i < 70 ? n - i : 70);
            sb_add(&pem, "\n", 1);
        }
        sb_adds(&pem, "-----END OPENSSH PRIVATE KEY-----\n");
        sodium_memzero(b64, b64len);
        free(b64);
        if (!pem.overflow)
            out = pem.p;
        else
            sb_free(&pem);
    }
done:
    sodium_memzero(sk, sizeof sk);
    if (sec.p)
        sodium_memzero(sec.p, sec.len);
    if (all.p)
        sodium_memzero(all.p, all.len);
    sb_free(&pub);
    sb_free(&sec);
    sb_free(&all);
    return out;
}

/* PROTOCOL.certkeys: the certificate's fields in order, then the CA's signature over them. */
char *ssh_cert_sign(const struct ssh_cert_req *req, EVP_PKEY *ca, const char *comment)
{
    if (!req->nprincipals || req->nprincipals > SSH_CERT_PRINCIPALS_MAX || req->valid_before <= req->valid_after)
        return NULL;
    for (size_t i = 0; i < req->nprincipals; i++)
        if (!ssh_principal_ok(req->principals[i], strlen(req->principals[i])))
            return NULL;
    const char *key_type = req->key->type == SSH_KEY_ED25519 ? SSH_ED25519 : SSH_ECDSA_P256;
    char cert_type[64];
    snprintf(cert_type, sizeof cert_type, "%s%s", key_type, SSH_CERT_SUFFIX);
    struct strbuf sb, sub;
    sb_init(&sb, SSH_CERT_MAX);
    sb_init(&sub, SSH_CERT_MAX);
    EVP_MD_CTX *md = NULL;
    char *line = NULL;

    sshcert__put_cstr(&sb, cert_type);
    unsigned char nonce[32];
    randombytes_buf(nonce, sizeof nonce);
    sshcert__put_str(&sb, nonce, sizeof nonce);
    /* the key's fields: its blob without the leading type string */
    struct sshcert__rd r = { req->key->blob, req->key->blob_len };
    const unsigned char *t;
    size_t tl;
    if (!sshcert__str(&r, &t, &tl))
        goto out;
    sb_add(&sb, r.p, r.n);
    sshcert__put_u64(&sb, req->serial);
    sshcert__put_u32(&sb, SSH_CERT_TYPE_USER);
    sshcert__put_cstr(&sb, req->key_id ? req->key_id : "");
    for (size_t i = 0; i < req->nprincipals; i++)
        sshcert__put_cstr(&sub, req->principals[i]);
    sshcert__put_str(&sb, sub.p, sub.len);
    sshcert__put_u64(&sb, req->valid_after);
    sshcert__put_u64(&sb, req->valid_before);
    sshcert__put_str(&sb, "", 0); /* critical options: none */
    sb_reset(&sub);               /* extensions, sorted by name as OpenSSH requires */
    if (req->permit_port_forwarding) {
        sshcert__put_cstr(&sub, "permit-port-forwarding");
        sshcert__put_str(&sub, "", 0);
    }
    if (req->permit_pty) {
        sshcert__put_cstr(&sub, "permit-pty");
        sshcert__put_str(&sub, "", 0);
    }
    sshcert__put_str(&sb, sub.p ? sub.p : "", sub.len);
    sshcert__put_str(&sb, "", 0); /* reserved */
    sb_reset(&sub);
    if (sshcert__ed25519_blob(ca, &sub) != 0)
        goto out;
    sshcert__put_str(&sb, sub.p, sub.len);
    if (sb.overflow)
        goto out;
    unsigned char sig[64];
    size_t siglen = sizeof sig;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, ca) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)sb.p, sb.len) != 1 || siglen != sizeof sig)
        goto out;
    sb_reset(&sub); /* the signature: string "ssh-ed25519", string sig (RFC 8709 §6) */
    sshcert__put_cstr(&sub, SSH_ED25519);
    sshcert__put_str(&sub, sig, siglen);
    sshcert__put_str(&sb, sub.p, sub.len);
    if (!sb.overflow && !sub.overflow)
        line = sshcert__line(cert_type, sb.p, sb.len, comment);
out:
    EVP_MD_CTX_free(md);
    sb_free(&sb);
    sb_free(&sub);
    return line;
}

int ssh_cert_valid_before(const char *line, size_t n, uint64_t *valid_before)
{
    static const char *const types[] = { SSH_ED25519 SSH_CERT_SUFFIX, SSH_ECDSA_P256 SSH_CERT_SUFFIX };
    const char *sp = memchr(line, ' ', n);
    if (!sp)
        return -1;
    size_t tlen = (size_t)(sp - line);
    int which = -1;
    for (int i = 0; i < 2; i++)
        if (tlen == strlen(types[i]) && !memcmp(line, types[i], tlen))
            which = i;
    const char *b = sp + 1, *e = b;
    while (e < line + n && !sshcert__space(*e) && *e != '\n' && *e != '\r')
        e++;
    unsigned char *blob = malloc(SSH_CERT_MAX);
    size_t blen = 0;
    int rc = -1;
    if (which < 0 || !blob ||
        sodium_base642bin(blob, SSH_CERT_MAX, b, (size_t)(e - b), NULL, &blen, NULL, sodium_base64_VARIANT_ORIGINAL))
        goto out;
    struct sshcert__rd r = { blob, blen };
    const unsigned char *s;
    size_t sl;
    uint64_t serial, after;
    uint32_t type;
    if (sshcert__str_is(&r, types[which]) && sshcert__str(&r, &s, &sl) &&
        sshcert__key_fields(&r, which ? SSH_KEY_ECDSA_P256 : SSH_KEY_ED25519) && sshcert__u64(&r, &serial) &&
        sshcert__u32(&r, &type) && sshcert__str(&r, &s, &sl) && sshcert__str(&r, &s, &sl) &&
        sshcert__u64(&r, &after) && sshcert__u64(&r, valid_before))
        rc = 0;
out:
    free(blob);
    return rc;
}

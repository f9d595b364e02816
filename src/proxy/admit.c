/* Admission: the steps from a parsed request head to a decision, on the exchange alone (any
 * transport): the target, the client address, the route or the gateway's own endpoints, the
 * identity, the policy, and the head for the origin. The transport reads and frames the head
 * (HTTP/1.1: conn.c) and acts on the outcome. */
#include "proxy/proxy.h"

#include "core/ipaddr.h"
#include "http/cookie.h"
#include "http/path.h"
#include "proxy/head.h"
#include "proxy/local.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define OWN_PREFIX "/cdn-cgi/access/"

/* Whether `ip` is one of the configured trusted_proxies. */
bool proxy__trusted_proxy(const struct config *cfg, const uint8_t ip[16])
{
    for (size_t i = 0; i < cfg->ntrusted_proxies; i++)
        if (cidr_contains(&cfg->trusted_proxies[i], ip))
            return true;
    return false;
}

/* The client address (SPEC.md §3.5): the peer, unless the peer is a trusted proxy; then the
 * right-most X-Forwarded-For entry that is not itself a trusted proxy. */
static void admit__client_ip(struct exchange *ex, const struct http_request *req)
{
    const struct config *cfg = ex->rt->cfg;
    memcpy(ex->client_ip, ex->peer, 16);
    if (cfg->ntrusted_proxies && proxy__trusted_proxy(cfg, ex->peer)) {
        for (size_t i = req->nheaders; i-- > 0;) {
            if (req->headers[i].id != HTTP_F_X_FORWARDED_FOR)
                continue;
            const char *p = req->headers[i].value.p;
            size_t n = req->headers[i].value.n;
            bool decided = false;
            while (n > 0) {
                const char *comma = memrchr(p, ',', n);
                const char *item = comma ? comma + 1 : p;
                uint8_t ip[16];
                if (head_parse_ip(item, (size_t)(p + n - item), ip) != 0) {
                    decided = true; /* garbage: keep the last address we could trust */
                    break;
                }
                memcpy(ex->client_ip, ip, 16);
                if (!proxy__trusted_proxy(cfg, ip)) {
                    decided = true;
                    break;
                }
                n = comma ? (size_t)(comma - p) : 0;
            }
            if (decided)
                break;
        }
    }
    ipaddr_format(ex->client_ip, ex->client_ip_str);
}

/* Copies method, host, paths and query out of the client buffer; and the origin the request
 * reached, as a Host names it (route/served.h: the Host's name on the listener's public scheme
 * and port, whatever port the Host claims). -1: 400. */
static int admit__copy_target(struct exchange *ex, const struct http_request *req,
                              const struct listener_cfg *l)
{
    struct http_slice host = req->authority.n ? req->authority : req->host;
    size_t plen = req->path.n;
    size_t total = req->method.n + 1 + 2 * (host.n + 7) + 2 * (plen + 2) + req->query.n + 1;
    char *s = malloc(total);
    if (!s)
        return -1;
    ex->strs = s;
    memcpy(s, req->method.p, req->method.n);
    s[req->method.n] = '\0';
    ex->method = s;
    ex->method_len = req->method.n;
    s += req->method.n + 1;
    int hl = route_host_normalize(host.p, host.n, s);
    if (hl < 0)
        return -1;
    ex->host = s;
    ex->host_len = (size_t)hl;
    ex->host_canonical = (size_t)hl == host.n && !strncasecmp(host.p, s, host.n);
    s += host.n + 1;
    /* the origin: the Host's name, and the public port unless it is the scheme's default */
    size_t name = ex->host_len;
    if (ex->host[0] == '[')
        name = (size_t)(strchr(ex->host, ']') - ex->host) + 1;
    else if (memchr(ex->host, ':', ex->host_len))
        name = (size_t)((const char *)memchr(ex->host, ':', ex->host_len) - ex->host);
    memcpy(s, ex->host, name);
    ex->origin_host = s;
    ex->origin_host_len = name;
    ex->https = l->public_https;
    if (l->public_port != (l->public_https ? 443 : 80)) {
        char digits[8];
        size_t d = sizeof digits;
        for (unsigned v = l->public_port; v; v /= 10)
            digits[--d] = (char)('0' + v % 10);
        s[ex->origin_host_len++] = ':';
        memcpy(s + ex->origin_host_len, digits + d, sizeof digits - d);
        ex->origin_host_len += sizeof digits - d;
    }
    s[ex->origin_host_len] = '\0';
    s += host.n + 7;
    char *fwd = s, *match = s + plen + 2;
    if (path_normalize(req->path.p, plen, fwd, &ex->path_len, match, &ex->match_len) != 0)
        return -1;
    ex->path = fwd;
    ex->match = match;
    s += 2 * (plen + 2);
    memcpy(s, req->query.p ? req->query.p : "", req->query.n);
    s[req->query.n] = '\0';
    ex->query = s;
    ex->query_len = req->query.n;
    ex->has_query = req->has_query;
    return 0;
}

/* Whether a cookie set on this listener needs the Secure attribute (SPEC.md §5): always,
 * except on plain HTTP served on a loopback address (the demo). */
bool proxy__secure_cookies(const struct exchange *ex)
{
    const struct listener_cfg *l = ex->tp->ops->listener(ex);
    if (ex->tp->ops->tls(ex) || l->public_https)
        return true;
    if (l->addr.ss_family == AF_INET)
        return ((const uint8_t *)&((const struct sockaddr_in *)&l->addr)->sin_addr)[0] != 127;
    if (l->addr.ss_family == AF_INET6)
        return !IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&l->addr)->sin6_addr);
    return true;
}

const char *proxy__hsts(const struct exchange *ex)
{
    const struct config *cfg = ex->rt->cfg;
    return cfg->hsts_header && (ex->tp->ops->tls(ex) || ex->tp->ops->listener(ex)->public_https)
               ? cfg->hsts_header
               : NULL;
}

/* Copies who the request is into the exchange (the log, the refusal page), and prepares the
 * app cookie for a service token on an app that also admits people (SPEC.md §3.5). */
static int admit__keep_identity(struct exchange *ex, const struct request_identity *ri)
{
    if (ri->id.email && !(ex->email = strdup(ri->id.email)))
        return -1;
    if (ri->id.sub && !(ex->sub = strdup(ri->id.sub)))
        return -1;
    if (ri->id.service_token && !(ex->service = strdup(ri->id.service_token)))
        return -1;
    bool has_allow = false;
    for (size_t i = 0; i < ex->app->npolicies; i++)
        has_allow |= ex->app->policies[i].decision == DECISION_ALLOW;
    if (ri->minted && has_allow) {
        int64_t max_age = ri->minted_exp - (int64_t)time(NULL); /* as long as the token lives */
        ex->set_cookie = cookie_token_lines(ex->rt->secret, ri->assertion, ri->assertion_len, max_age,
                                            ex->https, proxy__secure_cookies(ex));
        if (!ex->set_cookie)
            return -1;
    }
    return 0;
}

/* Whether the request is for the auth domain: where no app is served there, its root is the
 * app launcher (LOCAL_AUTH_ROOT) and its other paths are the gateway's 404. */
static bool admit__auth_domain(const struct exchange *ex)
{
    const char *ad = ex->rt->cfg->auth_domain;
    return ad && strlen(ad) == ex->host_len && !memcmp(ad, ex->host, ex->host_len);
}

/* The policy decision for an identified request, then the answer or the way to the origin. */
static enum admission admit__decide(struct exchange *ex, const struct http_request *req,
                                    const struct request_identity *ri, enum step *st)
{
    const struct transport_ops *tp = ex->tp->ops;
    char cn[256];
    struct policy_request pr = { .id = ri->ok ? &ri->id : NULL, .client_cn = cn };
    memcpy(pr.client_ip, ex->client_ip, 16);
    tp->client_cert(ex, &pr.client_cert, cn, sizeof cn);
    struct policy_result res;
    policy_evaluate(ex->app, &pr, &res); /* on every request, also with a valid token */
    ex->decision = res.decision;
    ex->policy = res.policy ? res.policy->name : NULL;
    ex->token_presented = ri->presented;
    ex->token_status = (uint8_t)ri->status;
    if (ri->ok && admit__keep_identity(ex, ri) != 0) {
        ex->close_after = true;
        *st = tp->fail(ex, 500, "internal", "Out of memory.");
        return ADMIT_ANSWERED;
    }
    if (!policy_admits(res.decision)) {
        *st = proxy__respond_refused(ex);
        return ADMIT_ANSWERED;
    }
    if (ex->app->origin.kind == ORIGIN_TCP) { /* a tunnel (tunnel.c): no HTTP head for the origin */
        if (proxy__tunnel_keep(ex, ri) == 0)
            return ADMIT_ORIGIN;
        ex->close_after = true;
        *st = tp->fail(ex, 500, "internal", "Out of memory.");
        return ADMIT_ANSWERED;
    }
    if (proxy__build_origin_head(ex, req, ri->ok && policy_admits(res.decision) && res.decision != ACCESS_BYPASS ? ri : NULL) != 0) {
        ex->close_after = true;
        *st = tp->fail(ex, 431, "headers_too_large", "The request head is too large.");
        return ADMIT_ANSWERED;
    }
    return ADMIT_ORIGIN;
}

enum admission proxy__admit(struct exchange *ex, const struct http_request *req, const char **own,
                            enum step *st)
{
    const struct transport_ops *tp = ex->tp->ops;
    ex->wants_html = head_wants_html(req);
    const struct http_header *ct = http_find_header(req->headers, req->nheaders, "content-type");
    ex->grpc = ct && ct->value.n >= 16 && !strncasecmp(ct->value.p, "application/grpc", 16);
    admit__client_ip(ex, req);

    int bad = admit__copy_target(ex, req, tp->listener(ex));
    const struct http_header *expect = http_find_header(req->headers, req->nheaders, "expect");
    if (bad) {
        ex->close_after = true;
        *st = tp->fail(ex, 400, "bad_request", "The request target is not acceptable.");
        return ADMIT_ANSWERED;
    }
    if (expect && !req->expect_continue) {
        ex->close_after = true;
        *st = tp->fail(ex, 417, "expectation_failed", "Only 100-continue is supported.");
        return ADMIT_ANSWERED;
    }
    const char *own_name = NULL;
    if (ex->match_len >= sizeof OWN_PREFIX - 1 && !memcmp(ex->match, OWN_PREFIX, sizeof OWN_PREFIX - 1))
        own_name = ex->match + sizeof OWN_PREFIX - 1;
    else if (!(ex->app = route_match(ex->rt->routes, ex->host, ex->host_len, ex->match, ex->match_len)) &&
             admit__auth_domain(ex) && ex->match_len == 1)
        own_name = LOCAL_AUTH_ROOT;
    if (own_name) {
        ex->decision = ACCESS_GATEWAY;
        *own = own_name;
        return ADMIT_OWN;
    }
    if (!ex->app) { /* the auth domain's other paths (a browser's /favicon.ico) are the gateway's */
        ex->decision = admit__auth_domain(ex) ? ACCESS_GATEWAY : ACCESS_DENY;
        *st = tp->fail(ex, 404, "not_found", "No application is served at this address.");
        return ADMIT_ANSWERED;
    }
    ex->art = runtime_app(ex->rt, ex->app);

    struct request_identity ri;
    proxy__identify(ex, req, &ri);
    enum admission a = admit__decide(ex, req, &ri, st);
    proxy__identity_release(&ri);
    return a;
}

/* The registry, the per-worker counter tables and the text exposition of metrics.h
 * (https://prometheus.io/docs/instrumenting/exposition_formats/, version 0.0.4). */
#include "metrics/metrics.h"

#include "core/version.h"
#include "store/store.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* latch_request_duration_seconds: bucket bounds in microseconds, and as the `le` label says. */
static const uint64_t metrics__le_us[] = { 500,    1000,   2500,    5000,    10000,
                                           25000,  50000,  100000,  250000,  500000,
                                           1000000, 2500000, 5000000, 10000000 };
static const char *const metrics__le[] = { "0.0005", "0.001", "0.0025", "0.005", "0.01",
                                           "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                           "1",      "2.5",   "5",      "10",    "+Inf" };
#define METRICS_BUCKETS (sizeof metrics__le / sizeof *metrics__le) /* the last is +Inf */
#define METRICS_HIST_VALS (METRICS_BUCKETS + 1) /* per-bucket counts, then the sum in µs */
_Static_assert(sizeof metrics__le_us / sizeof *metrics__le_us + 1 == METRICS_BUCKETS,
               "one bound per finite bucket");

static const char *const metrics__origin_kind[METRICS_ORIGIN_KINDS] = {
    "connect", "timeout", "reset", "tls", "protocol",
};
static const char *const metrics__handoff[METRICS_HANDOFFS] = { "sealed", "delivered", "pending" };

#define METRICS_KEY_USED (1ull << 63) /* every stored key has it: 0 is an empty slot */
#define METRICS_MAX_IDPS 256          /* distinct idp labels; more are counted as "_other" */

/* --- a worker's table: keys to fixed-size rows of counters -------------------------------
 * One writer (its worker), any number of readers (scrapes). A published row never moves:
 * growing copies the rows into a table twice the size, publishes it (release) and keeps the
 * old one until the registry is freed, so a scrape still reading the old one sees slightly
 * older values, never freed memory. The old tables together are smaller than the newest. */

struct mtab_data {
    uint32_t cap; /* a power of two */
    struct mtab_data *older;
    _Atomic uint64_t *keys;
    _Atomic uint64_t *vals; /* cap rows of nvals */
};

struct mtab {
    _Atomic(struct mtab_data *) cur;
    uint32_t used, nvals; /* used: writer only */
};

static struct mtab_data *mtab__alloc(uint32_t cap, uint32_t nvals)
{
    size_t n = sizeof(struct mtab_data) + (size_t)cap * (1 + nvals) * sizeof(uint64_t);
    struct mtab_data *d = calloc(1, n);
    if (!d)
        return NULL;
    d->cap = cap;
    d->keys = (_Atomic uint64_t *)(d + 1);
    d->vals = d->keys + cap;
    return d;
}

static void mtab__free(struct mtab *t)
{
    struct mtab_data *d = atomic_load_explicit(&t->cur, memory_order_relaxed);
    while (d) {
        struct mtab_data *older = d->older;
        free(d);
        d = older;
    }
}

/* The slot holding `key`, or the empty slot where it would go (the table is never full). */
static uint32_t mtab__probe(const struct mtab_data *d, uint64_t key)
{
    uint32_t mask = d->cap - 1;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    for (;;) {
        uint64_t k = atomic_load_explicit(&d->keys[i], memory_order_relaxed);
        if (k == key || k == 0)
            return i;
        i = (i + 1) & mask;
    }
}

/* The row of `key`, inserted when new (writer only). NULL when out of memory: not counted. */
static _Atomic uint64_t *mtab__row(struct mtab *t, uint64_t key)
{
    struct mtab_data *d = atomic_load_explicit(&t->cur, memory_order_relaxed);
    if (d) {
        uint32_t i = mtab__probe(d, key);
        if (atomic_load_explicit(&d->keys[i], memory_order_relaxed) == key)
            return &d->vals[(size_t)i * t->nvals];
    }
    if (!d || (t->used + 1) * 4 > d->cap * 3) {
        struct mtab_data *n = mtab__alloc(d ? d->cap * 2 : 16, t->nvals);
        if (!n)
            return NULL;
        for (uint32_t j = 0; d && j < d->cap; j++) {
            uint64_t k = atomic_load_explicit(&d->keys[j], memory_order_relaxed);
            if (!k)
                continue;
            uint32_t to = mtab__probe(n, k);
            for (uint32_t v = 0; v < t->nvals; v++)
                atomic_store_explicit(&n->vals[(size_t)to * t->nvals + v],
                                      atomic_load_explicit(&d->vals[(size_t)j * t->nvals + v],
                                                           memory_order_relaxed),
                                      memory_order_relaxed);
            atomic_store_explicit(&n->keys[to], k, memory_order_relaxed);
        }
        n->older = d;
        atomic_store_explicit(&t->cur, n, memory_order_release);
        d = n;
    }
    uint32_t i = mtab__probe(d, key);
    atomic_store_explicit(&d->keys[i], key, memory_order_release); /* its row is zero already */
    t->used++;
    return &d->vals[(size_t)i * t->nvals];
}

/* One writer: a plain load and store, no locked instruction. */
static inline void metrics__add(_Atomic uint64_t *v, uint64_t n)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n, memory_order_relaxed);
}

/* --- the registry ------------------------------------------------------------------------ */

struct metrics_worker {
    alignas(64) struct metrics *m; /* one cache line apart from the next worker's block */
    struct mtab requests;      /* app, decision, status -> count */
    struct mtab durations;     /* app -> buckets and sum */
    struct mtab origin_errors; /* app, kind -> count */
    _Atomic uint64_t open_conns, cache_hits, cache_misses;
    _Atomic uint64_t tunnels_open, tunnel_to_origin, tunnel_from_origin;
};

struct metrics_login {
    char *idp;
    uint64_t outcome[2]; /* failure, success */
};

struct metrics {
    pthread_mutex_t lock; /* app names and login rows */
    char **apps;          /* by id; apps[0] = "" */
    uint32_t napps, apps_cap;
    struct metrics_login *logins;
    size_t nlogins;
    _Atomic uint64_t handoffs[METRICS_HANDOFFS];
    _Atomic uint64_t reloads_ok, reloads_error, generation;
    struct store *store;
    struct timespec start; /* CLOCK_REALTIME */
    unsigned nworkers;
    struct metrics_worker *workers;
};

struct metrics *metrics_new(unsigned nworkers, struct store *store)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->store = store;
    clock_gettime(CLOCK_REALTIME, &m->start);
    atomic_init(&m->generation, 1);
    m->nworkers = nworkers;
    size_t wsize = (nworkers ? nworkers : 1) * sizeof *m->workers; /* a multiple of 64 */
    m->workers = aligned_alloc(alignof(struct metrics_worker), wsize);
    m->apps = calloc(16, sizeof *m->apps);
    if (!m->workers || !m->apps || !(m->apps[0] = strdup(""))) {
        metrics_free(m);
        return NULL;
    }
    memset(m->workers, 0, wsize);
    m->napps = 1;
    m->apps_cap = 16;
    for (unsigned i = 0; i < nworkers; i++) {
        struct metrics_worker *mw = &m->workers[i];
        mw->m = m;
        mw->requests.nvals = 1;
        mw->durations.nvals = METRICS_HIST_VALS;
        mw->origin_errors.nvals = 1;
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (unsigned i = 0; m->workers && i < m->nworkers; i++) {
        mtab__free(&m->workers[i].requests);
        mtab__free(&m->workers[i].durations);
        mtab__free(&m->workers[i].origin_errors);
    }
    free(m->workers);
    for (uint32_t i = 0; m->apps && i < m->napps; i++)
        free(m->apps[i]);
    free(m->apps);
    for (size_t i = 0; i < m->nlogins; i++)
        free(m->logins[i].idp);
    free(m->logins);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

struct metrics_worker *metrics_worker(struct metrics *m, unsigned i)
{
    return m && i < m->nworkers ? &m->workers[i] : NULL;
}

uint32_t metrics_app_id(struct metrics *m, const char *name)
{
    if (!m || !name || !*name)
        return 0;
    uint32_t id = 0;
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 1; i < m->napps; i++)
        if (!strcmp(m->apps[i], name)) {
            id = i;
            goto out;
        }
    if (m->napps == m->apps_cap) {
        char **n = realloc(m->apps, 2 * (size_t)m->apps_cap * sizeof *n);
        if (!n)
            goto out; /* counted as "no app" rather than not at all */
        m->apps = n;
        m->apps_cap *= 2;
    }
    if ((m->apps[m->napps] = strdup(name)))
        id = m->napps++;
out:
    pthread_mutex_unlock(&m->lock);
    return id;
}

/* --- counting ---------------------------------------------------------------------------- */

void metrics_request(struct metrics_worker *mw, uint32_t app, enum access_decision decision,
                     int status, uint64_t duration_us)
{
    if (!mw)
        return;
    if (status < 0 || status > 0xffff)
        status = 0;
    uint64_t key = METRICS_KEY_USED | (uint64_t)app << 24 | (uint64_t)(decision & 0xff) << 16 |
                   (uint64_t)status;
    _Atomic uint64_t *row = mtab__row(&mw->requests, key);
    if (row)
        metrics__add(row, 1);
    row = mtab__row(&mw->durations, METRICS_KEY_USED | app);
    if (row) {
        size_t b = 0;
        while (b < METRICS_BUCKETS - 1 && duration_us > metrics__le_us[b])
            b++;
        metrics__add(&row[b], 1);
        metrics__add(&row[METRICS_BUCKETS], duration_us);
    }
}

void metrics_origin_error(struct metrics_worker *mw, uint32_t app, enum metrics_origin_error kind)
{
    if (!mw || (unsigned)kind >= METRICS_ORIGIN_KINDS)
        return;
    _Atomic uint64_t *row = mtab__row(&mw->origin_errors, METRICS_KEY_USED | (uint64_t)app << 8 | kind);
    if (row)
        metrics__add(row, 1);
}

void metrics_tunnel(struct metrics_worker *mw, int open, uint64_t to_origin, uint64_t from_origin)
{
    if (!mw)
        return;
    if (open)
        metrics__add(&mw->tunnels_open, (uint64_t)(int64_t)open); /* wraps back on -1 */
    if (to_origin)
        metrics__add(&mw->tunnel_to_origin, to_origin);
    if (from_origin)
        metrics__add(&mw->tunnel_from_origin, from_origin);
}

void metrics_worker_sample(struct metrics_worker *mw, uint64_t open_conns, uint64_t cache_hits,
                           uint64_t cache_misses)
{
    if (!mw)
        return;
    atomic_store_explicit(&mw->open_conns, open_conns, memory_order_relaxed);
    atomic_store_explicit(&mw->cache_hits, cache_hits, memory_order_relaxed);
    atomic_store_explicit(&mw->cache_misses, cache_misses, memory_order_relaxed);
}

void metrics_login(struct metrics_worker *mw, const char *idp, bool success)
{
    if (!mw)
        return;
    struct metrics *m = mw->m;
    if (!idp)
        idp = "";
    pthread_mutex_lock(&m->lock);
    struct metrics_login *row = NULL;
    for (size_t i = 0; i < m->nlogins && !row; i++)
        if (!strcmp(m->logins[i].idp, idp))
            row = &m->logins[i];
    if (!row && m->nlogins >= METRICS_MAX_IDPS) {
        idp = "_other";
        for (size_t i = 0; i < m->nlogins && !row; i++)
            if (!strcmp(m->logins[i].idp, idp))
                row = &m->logins[i];
    }
    if (!row) {
        struct metrics_login *n = realloc(m->logins, (m->nlogins + 1) * sizeof *n);
        if (n) {
            m->logins = n;
            row = &n[m->nlogins];
            memset(row, 0, sizeof *row);
            if ((row->idp = strdup(idp)))
                m->nlogins++;
            else
                row = NULL;
        }
    }
    if (row)
        row->outcome[success]++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_handoff(struct metrics_worker *mw, enum metrics_handoff outcome)
{
    if (mw && (unsigned)outcome < METRICS_HANDOFFS)
        atomic_fetch_add_explicit(&mw->m->handoffs[outcome], 1, memory_order_relaxed);
}

void metrics_reload(struct metrics *m, bool ok)
{
    if (!m)
        return;
    atomic_fetch_add_explicit(ok ? &m->reloads_ok : &m->reloads_error, 1, memory_order_relaxed);
    if (ok)
        atomic_fetch_add_explicit(&m->generation, 1, memory_order_relaxed);
}

/* --- scraping ---------------------------------------------------------------------------- */

/* Rows gathered from every worker's table: key then nvals values, sorted and summed by key. */
struct mrows {
    uint64_t *p;
    size_t n, cap;
    uint32_t nvals;
};

static bool mrows__collect(struct mrows *r, struct mtab *t)
{
    struct mtab_data *d = atomic_load_explicit(&t->cur, memory_order_acquire);
    size_t stride = 1 + r->nvals;
    for (uint32_t i = 0; d && i < d->cap; i++) {
        uint64_t k = atomic_load_explicit(&d->keys[i], memory_order_acquire);
        if (!k)
            continue;
        if (r->n == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 64;
            uint64_t *p = realloc(r->p, cap * stride * sizeof *p);
            if (!p)
                return false;
            r->p = p;
            r->cap = cap;
        }
        uint64_t *row = &r->p[r->n++ * stride];
        row[0] = k;
        for (uint32_t v = 0; v < r->nvals; v++)
            row[1 + v] = atomic_load_explicit(&d->vals[(size_t)i * r->nvals + v], memory_order_relaxed);
    }
    return true;
}

static int mrows__cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void mrows__merge(struct mrows *r)
{
    size_t stride = 1 + r->nvals, out = 0;
    if (!r->n)
        return;
    qsort(r->p, r->n, stride * sizeof *r->p, mrows__cmp);
    for (size_t i = 1; i < r->n; i++) {
        uint64_t *dst = &r->p[out * stride], *src = &r->p[i * stride];
        if (src[0] == dst[0]) {
            for (uint32_t v = 1; v < stride; v++)
                dst[v] += src[v];
        } else {
            out++;
            memmove(&r->p[out * stride], src, stride * sizeof *src);
        }
    }
    r->n = out + 1;
}

void metrics_label_value(struct strbuf *out, const char *s)
{
    for (const char *run = s;; s++) {
        if (*s && *s != '\\' && *s != '"' && *s != '\n')
            continue;
        sb_add(out, run, (size_t)(s - run));
        if (!*s)
            return;
        sb_adds(out, *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n");
        run = s + 1;
    }
}

static void metrics__family(struct strbuf *out, const char *name, const char *type, const char *help)
{
    sb_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `{app="…"` (the caller closes the brace or adds labels). Under the registry lock. */
static void metrics__app_label(struct strbuf *out, const struct metrics *m, uint64_t app)
{
    sb_adds(out, "{app=\"");
    metrics_label_value(out, app < m->napps ? m->apps[app] : "");
    sb_adds(out, "\"");
}

static void metrics__requests(struct strbuf *out, const struct metrics *m, const struct mrows *req,
                              const struct mrows *dur)
{
    metrics__family(out, "latch_requests_total", "counter",
                    "Requests the gateway answered or proxied, by app, decision (as in the request "
                    "log) and status sent.");
    for (size_t i = 0; i < req->n; i++) {
        const uint64_t *row = &req->p[i * 2];
        sb_adds(out, "latch_requests_total");
        metrics__app_label(out, m, (row[0] >> 24) & 0xffffffffu);
        sb_adds(out, ",decision=\"");
        sb_adds(out, policy_decision_name((enum access_decision)((row[0] >> 16) & 0xff)));
        sb_addf(out, "\",status=\"%u\"} ", (unsigned)(row[0] & 0xffff));
        sb_addu(out, row[1]);
        sb_adds(out, "\n");
    }
    metrics__family(out, "latch_request_duration_seconds", "histogram",
                    "Time from a request's head to the end of its response, by app.");
    size_t stride = 1 + METRICS_HIST_VALS;
    for (size_t i = 0; i < dur->n; i++) {
        const uint64_t *row = &dur->p[i * stride];
        uint64_t app = row[0] & 0xffffffffu, cum = 0;
        for (size_t b = 0; b < METRICS_BUCKETS; b++) {
            cum += row[1 + b];
            sb_adds(out, "latch_request_duration_seconds_bucket");
            metrics__app_label(out, m, app);
            sb_addf(out, ",le=\"%s\"} ", metrics__le[b]);
            sb_addu(out, cum);
            sb_adds(out, "\n");
        }
        uint64_t sum_us = row[1 + METRICS_BUCKETS];
        sb_adds(out, "latch_request_duration_seconds_sum");
        metrics__app_label(out, m, app);
        sb_addf(out, "} %llu.%06llu\n", (unsigned long long)(sum_us / 1000000),
                (unsigned long long)(sum_us % 1000000));
        sb_adds(out, "latch_request_duration_seconds_count");
        metrics__app_label(out, m, app);
        sb_adds(out, "} ");
        sb_addu(out, cum);
        sb_adds(out, "\n");
    }
}

bool metrics_render(struct metrics *m, struct strbuf *out)
{
    struct mrows req = { .nvals = 1 }, dur = { .nvals = METRICS_HIST_VALS }, oerr = { .nvals = 1 };
    uint64_t conns = 0, hits = 0, misses = 0, tunnels = 0, to_origin = 0, from_origin = 0;
    bool ok = true;
    for (unsigned i = 0; i < m->nworkers; i++) {
        struct metrics_worker *mw = &m->workers[i];
        ok = ok && mrows__collect(&req, &mw->requests) && mrows__collect(&dur, &mw->durations) &&
             mrows__collect(&oerr, &mw->origin_errors);
        conns += atomic_load_explicit(&mw->open_conns, memory_order_relaxed);
        hits += atomic_load_explicit(&mw->cache_hits, memory_order_relaxed);
        misses += atomic_load_explicit(&mw->cache_misses, memory_order_relaxed);
        tunnels += atomic_load_explicit(&mw->tunnels_open, memory_order_relaxed);
        to_origin += atomic_load_explicit(&mw->tunnel_to_origin, memory_order_relaxed);
        from_origin += atomic_load_explicit(&mw->tunnel_from_origin, memory_order_relaxed);
    }
    if (!ok)
        goto out;
    mrows__merge(&req);
    mrows__merge(&dur);
    mrows__merge(&oerr);

    pthread_mutex_lock(&m->lock);
    metrics__requests(out, m, &req, &dur);
    metrics__family(out, "latch_origin_errors_total", "counter",
                    "Origin failures answered with 502 or 504 (or a cut response), by app and kind.");
    for (size_t i = 0; i < oerr.n; i++) {
        const uint64_t *row = &oerr.p[i * 2];
        unsigned kind = (unsigned)(row[0] & 0xff);
        sb_adds(out, "latch_origin_errors_total");
        metrics__app_label(out, m, (row[0] >> 8) & 0xffffffffu);
        sb_addf(out, ",kind=\"%s\"} ", kind < METRICS_ORIGIN_KINDS ? metrics__origin_kind[kind] : "");
        sb_addu(out, row[1]);
        sb_adds(out, "\n");
    }
    metrics__family(out, "latch_logins_total", "counter",
                    "Logins that ended, by identity provider and outcome (as in the auth log).");
    for (size_t i = 0; i < m->nlogins; i++) {
        for (int o = 1; o >= 0; o--) {
            sb_adds(out, "latch_logins_total{idp=\"");
            metrics_label_value(out, m->logins[i].idp);
            sb_addf(out, "\",outcome=\"%s\"} ", o ? "success" : "failure");
            sb_addu(out, m->logins[i].outcome[o]);
            sb_adds(out, "\n");
        }
    }
    pthread_mutex_unlock(&m->lock);

    metrics__family(out, "latch_handoffs_total", "counter",
                    "Command-line handoffs: boxes sealed, boxes delivered, long polls that ended empty.");
    for (int o = 0; o < METRICS_HANDOFFS; o++) {
        sb_addf(out, "latch_handoffs_total{outcome=\"%s\"} ", metrics__handoff[o]);
        sb_addu(out, atomic_load_explicit(&m->handoffs[o], memory_order_relaxed));
        sb_adds(out, "\n");
    }
    metrics__family(out, "latch_token_cache_hits_total", "counter",
                    "Presented tokens found in a worker's verified-token cache.");
    sb_adds(out, "latch_token_cache_hits_total ");
    sb_addu(out, hits);
    sb_adds(out, "\n");
    metrics__family(out, "latch_token_cache_misses_total", "counter",
                    "Presented tokens that had to be verified (signature checked).");
    sb_adds(out, "latch_token_cache_misses_total ");
    sb_addu(out, misses);
    sb_adds(out, "\n");
    metrics__family(out, "latch_open_connections", "gauge", "Client connections open, all workers.");
    sb_adds(out, "latch_open_connections ");
    sb_addu(out, conns);
    sb_adds(out, "\n");

    metrics__family(out, "latch_tunnels_open", "gauge", "Tunnels to tcp:// apps open, all workers.");
    sb_adds(out, "latch_tunnels_open ");
    sb_addu(out, tunnels);
    sb_adds(out, "\n");
    metrics__family(out, "latch_tunnel_bytes_total", "counter",
                    "Bytes carried by tunnels to tcp:// apps (WebSocket payload), by direction.");
    sb_adds(out, "latch_tunnel_bytes_total{direction=\"to_origin\"} ");
    sb_addu(out, to_origin);
    sb_adds(out, "\nlatch_tunnel_bytes_total{direction=\"from_origin\"} ");
    sb_addu(out, from_origin);
    sb_adds(out, "\n");

    const char *backend = m->store ? store_backend(m->store) : "none";
    metrics__family(out, "latch_store_up", "gauge", "1 while the shared-state store answers, else 0.");
    sb_addf(out, "latch_store_up %d\n", m->store ? store_up(m->store) != 0 : 0);
    metrics__family(out, "latch_store_info", "gauge", "The shared-state store's backend.");
    sb_adds(out, "latch_store_info{backend=\"");
    metrics_label_value(out, backend ? backend : "");
    sb_adds(out, "\"} 1\n");

    metrics__family(out, "latch_reloads_total", "counter",
                    "Configuration reloads (SIGHUP), by result: error keeps the running configuration.");
    sb_adds(out, "latch_reloads_total{result=\"ok\"} ");
    sb_addu(out, atomic_load_explicit(&m->reloads_ok, memory_order_relaxed));
    sb_adds(out, "\nlatch_reloads_total{result=\"error\"} ");
    sb_addu(out, atomic_load_explicit(&m->reloads_error, memory_order_relaxed));
    sb_adds(out, "\n");
    metrics__family(out, "latch_config_generation", "gauge",
                    "Configurations loaded since start: 1, plus one per accepted reload.");
    sb_adds(out, "latch_config_generation ");
    sb_addu(out, atomic_load_explicit(&m->generation, memory_order_relaxed));
    sb_adds(out, "\n");
    metrics__family(out, "latch_build_info", "gauge", "Always 1; the version is a label.");
    sb_adds(out, "latch_build_info{version=\"");
    metrics_label_value(out, LATCH_VERSION);
    sb_adds(out, "\"} 1\n");
    metrics__family(out, "process_start_time_seconds", "gauge",
                    "Start time of the process since the Unix epoch, in seconds.");
    sb_addf(out, "process_start_time_seconds %lld.%03ld\n", (long long)m->start.tv_sec,
            m->start.tv_nsec / 1000000);
out:
    free(req.p);
    free(dur.p);
    free(oerr.p);
    return ok && !out->overflow;
}

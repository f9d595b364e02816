/* A worker's context for its requests (worker_ctx.h): the runtime, the request log lines, the
 * rate of repeated log lines. */
#include "request/worker_ctx.h"

#define NOTICE_PERIOD_MS 10000 /* one line per condition and period (worker_ctx_notice) */

struct runtime *worker_ctx_runtime(struct worker_ctx *w)
{
    runtime_ref(w->rt);
    return w->rt;
}

void worker_ctx_log_flush(struct worker_ctx *w)
{
    if (w->log_rt && w->logbuf.len)
        log_write(w->log_rt->request_log, w->logbuf.p, w->logbuf.len);
    sb_reset(&w->logbuf);
    runtime_unref(w->log_rt);
    w->log_rt = NULL;
}

struct strbuf *worker_ctx_log_begin(struct worker_ctx *w, struct runtime *rt)
{
    if (w->log_rt != rt || w->logbuf.len > 16384)
        worker_ctx_log_flush(w);
    if (!w->log_rt) {
        runtime_ref(rt);
        w->log_rt = rt;
    }
    return &w->logbuf;
}

bool worker_ctx_notice(struct worker_ctx *w, struct worker_ctx_notice *n)
{
    n->count++;
    uint64_t now = loop_now(w->loop);
    if (now < n->next_ms)
        return false;
    n->next_ms = now + NOTICE_PERIOD_MS;
    return true;
}

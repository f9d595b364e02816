/* libFuzzer target: the HTTP/2 request path (src/proxy/h2.c), frames in, decisions out. The
 * input is what a client sends after the connection preface; an nghttp2 server session with
 * the options and SETTINGS latchd uses reads it, and each stream's header list goes through
 * the transport's own functions (proxy__h2_field_add, proxy__h2_request: the list as an
 * HTTP/1.1 head read by http_parse_request); the bytes nghttp2 answers go to a sink.
 * Invariants of an accepted request: one whole head (no second message inside), origin-form
 * (no absolute URI whose authority would override :authority), the Host the parser read is
 * :authority (or host, equal to it), no CR/LF/NUL in any field the origin would get, and the
 * framing of the body is the parser's (chunked exactly when the list had no length and the
 * stream did not end). An extended CONNECT for websocket (RFC 8441: SETTINGS_ENABLE_CONNECT_PROTOCOL
 * is announced, as latchd does) is a GET with one Upgrade: websocket and no body. Refusals are
 * 400, 414, 431, or 501 (another CONNECT). */
#include "core/strbuf.h"
#include "http/http.h"
#include "proxy/h2.h"

#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_STREAMS 8
#define FUZZ_MAX_LIST 32768

struct fuzz_stream {
    int32_t id;
    struct h2_fields fl;
};

struct fuzz_conn {
    struct fuzz_stream s[FUZZ_STREAMS];
};

static struct fuzz_stream *fuzz_find(struct fuzz_conn *fc, int32_t id)
{
    for (int i = 0; i < FUZZ_STREAMS; i++)
        if (fc->s[i].id == id)
            return &fc->s[i];
    return NULL;
}

static ssize_t fuzz_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
    return (ssize_t)len; /* the sink */
}

static int fuzz_begin(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct fuzz_conn *fc = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct fuzz_stream *st = fuzz_find(fc, 0);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->id = frame->hd.stream_id;
    proxy__h2_fields_init(&st->fl);
    return 0;
}

static int fuzz_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    struct fuzz_stream *st = fuzz_find(user, frame->hd.stream_id);
    if (!st || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    return proxy__h2_field_add(&st->fl, name, nlen, value, vlen, FUZZ_MAX_LIST) == 0
               ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static void fuzz_judge(struct fuzz_stream *st, bool in_end)
{
    struct strbuf head;
    sb_init(&head, HTTP_MAX_REQUEST_LINE + HTTP_MAX_HEADER_BYTES + 64);
    struct http_request req;
    bool chunked;
    bool ws;
    int status = proxy__h2_request(&st->fl, in_end, &head, &chunked, "dGhlIHNhbXBsZSBub25jZQ==", &ws, &req);
    if (status) {
        if (status != 400 && status != 414 && status != 431 && status != 501)
            abort();
    } else {
        const struct h2_fields *fl = &st->fl;
        const struct h2_field *a = fl->p_authority >= 0 ? &fl->f[fl->p_authority] : NULL;
        if (!a) /* then the host field: the first one named host */
            for (size_t i = 0; i < fl->nf && !a; i++)
                if (fl->f[i].name_len == 4 && !memcmp(fl->hdr.p + fl->f[i].name, "host", 4))
                    a = &fl->f[i];
        if (!a || req.authority.n || req.host.n != a->value_len ||
            memcmp(req.host.p, fl->hdr.p + a->value, a->value_len))
            abort();
        if (req.target.n == 0 || req.target.p[0] != '/')
            abort();
        if (memchr(head.p, '\0', head.len))
            abort();
        for (size_t i = 0; i < req.nheaders; i++)
            if (memchr(req.headers[i].value.p, '\r', req.headers[i].value.n) ||
                memchr(req.headers[i].value.p, '\n', req.headers[i].value.n))
                abort();
        if (chunked != (req.body == HTTP_BODY_CHUNKED))
            abort();
        if (ws && (!req.upgrade || chunked || req.body != HTTP_BODY_NONE || !http_slice_eq(req.method, "get")))
            abort();
    }
    sb_free(&head);
    sb_free(&st->fl.hdr);
    st->id = 0;
}

static int fuzz_frame(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct fuzz_stream *st = fuzz_find(user, frame->hd.stream_id);
    if (st && frame->hd.stream_id && frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        fuzz_judge(st, frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    return 0;
}

static int fuzz_close(nghttp2_session *s, int32_t id, uint32_t error, void *user)
{
    struct fuzz_stream *st = fuzz_find(user, id);
    if (st) {
        sb_free(&st->fl.hdr);
        st->id = 0;
    }
    return 0;
}

static int fuzz_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
    nghttp2_session_consume(s, id, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    struct fuzz_conn fc = { 0 };
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_session *s;
    if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        abort();
    nghttp2_session_callbacks_set_send_callback(cb, fuzz_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, fuzz_begin);
    nghttp2_session_callbacks_set_on_header_callback(cb, fuzz_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, fuzz_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, fuzz_close);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, fuzz_data);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_continuations(opt, 8);
    if (nghttp2_session_server_new2(&s, cb, &fc, opt) != 0)
        abort();
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, FUZZ_STREAMS },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, FUZZ_MAX_LIST },
        { NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 },
    };
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 3);
    if (nghttp2_session_mem_recv(s, (const uint8_t *)preface, sizeof preface - 1) >= 0 &&
        nghttp2_session_mem_recv(s, data, size) >= 0)
        nghttp2_session_send(s);
    for (int i = 0; i < FUZZ_STREAMS; i++)
        if (fc.s[i].id)
            sb_free(&fc.s[i].fl.hdr);
    nghttp2_session_del(s);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return 0;
}

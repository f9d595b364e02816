/* The configuration's YAML layer: turns libyaml events into a small tree whose nodes keep their
 * 1-based line/column, and collects "FILE:LINE:COL: message" errors for the whole loader. */
#include "config/config-int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

void config__error(struct config__ctx *c, struct config_pos pos, const char *fmt, ...)
{
    if (c->nerrs >= CONFIG__MAX_ERRORS) {
        c->dropped++;
        return;
    }
    if (c->nerrs == c->caperrs) {
        size_t cap = c->caperrs ? c->caperrs * 2 : 16;
        struct config__err *e = realloc(c->errs, cap * sizeof *e);
        if (!e) {
            c->oom = true;
            return;
        }
        c->errs = e;
        c->caperrs = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0) {
        c->oom = true;
        return;
    }
    c->errs[c->nerrs].pos = pos;
    c->errs[c->nerrs].seq = c->nerrs;
    c->errs[c->nerrs].msg = msg;
    c->nerrs++;
}

static int config_err_cmp(const void *a, const void *b)
{
    const struct config__err *x = a, *y = b;
    if (x->pos.line != y->pos.line)
        return x->pos.line < y->pos.line ? -1 : 1;
    if (x->pos.col != y->pos.col)
        return x->pos.col < y->pos.col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends one formatted line to out; false when memory ran out. */
static bool config_errors_push(struct config_errors *out, const char *name, struct config_pos pos,
                               const char *msg)
{
    char *line = NULL;
    if (asprintf(&line, "%s:%d:%d: %s", name, pos.line, pos.col, msg) < 0)
        return false;
    char **l = realloc(out->lines, (out->n + 1) * sizeof *l);
    if (!l) {
        free(line);
        return false;
    }
    out->lines = l;
    out->lines[out->n++] = line;
    return true;
}

void config_errors_add(struct config_errors *errs, const char *file, struct config_pos pos,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL, *line = NULL;
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0)
        return;
    if (file && pos.line > 0) {
        config_errors_push(errs, file, pos, msg);
        free(msg);
        return;
    }
    if (file && asprintf(&line, "%s: %s", file, msg) < 0)
        line = NULL;
    if (file)
        free(msg);
    else
        line = msg; /* a whole line already */
    char **l = line ? realloc(errs->lines, (errs->n + 1) * sizeof *l) : NULL;
    if (!l) {
        free(line);
        return;
    }
    errs->lines = l;
    errs->lines[errs->n++] = line;
}

/* One line's place for config_errors_sort: its line and column after "FILE:", and its index
 * (lines without a position sort after the others, in their order). */
struct config_line_key {
    long line, col;
    size_t idx;
    char *text;
};

static int config_line_cmp(const void *a, const void *b)
{
    const struct config_line_key *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void config_errors_sort(struct config_errors *errs, size_t from, const char *file)
{
    size_t n = errs->n > from ? errs->n - from : 0, flen = strlen(file);
    struct config_line_key *k = n > 1 ? calloc(n, sizeof *k) : NULL;
    if (!k)
        return;
    for (size_t i = 0; i < n; i++) {
        char *t = errs->lines[from + i], *end = NULL;
        k[i] = (struct config_line_key){ LONG_MAX, LONG_MAX, i, t };
        if (strncmp(t, file, flen) || t[flen] != ':')
            continue;
        long line = strtol(t + flen + 1, &end, 10);
        if (end && *end == ':') {
            long col = strtol(end + 1, &end, 10);
            if (end && *end == ':')
                k[i].line = line, k[i].col = col;
        }
    }
    qsort(k, n, sizeof *k, config_line_cmp);
    for (size_t i = 0; i < n; i++)
        errs->lines[from + i] = k[i].text;
    free(k);
}

void config__errors_flush(struct config__ctx *c, struct config_errors *out)
{
    if (!out)
        return;
    if (c->nerrs > 1)
        qsort(c->errs, c->nerrs, sizeof *c->errs, config_err_cmp);
    for (size_t i = 0; i < c->nerrs; i++)
        config_errors_push(out, c->name, c->errs[i].pos, c->errs[i].msg);
    struct config_pos last = c->nerrs ? c->errs[c->nerrs - 1].pos : (struct config_pos){1, 1};
    if (c->dropped) {
        char msg[96];
        snprintf(msg, sizeof msg, "too many errors (%zu more not shown)", c->dropped);
        config_errors_push(out, c->name, last, msg);
    }
    if (c->oom)
        config_errors_push(out, c->name, last, "out of memory while loading the configuration");
}

void config__ctx_free(struct config__ctx *c)
{
    for (size_t i = 0; i < c->nerrs; i++)
        free(c->errs[i].msg);
    free(c->errs);
    for (size_t i = 0; i < c->tree.nnodes; i++)
        if (c->tree.nodes[i].owned)
            free(c->tree.nodes[i].text);
    free(c->tree.nodes);
    free(c->tree.kids);
    memset(c, 0, sizeof *c);
}

void config_errors_print(const struct config_errors *errs, FILE *out)
{
    for (size_t i = 0; errs && i < errs->n; i++)
        fprintf(out, "%s\n", errs->lines[i]);
}

void config_errors_clear(struct config_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}

bool config__is_null(const struct config__node *n)
{
    if (n->kind != CONFIG__SCALAR || !n->implicit)
        return false;
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

/* ---- building the tree from events ---- */

struct config_anchor {
    char *name;
    size_t node;
};

struct config_open {
    size_t node;      /* the collection being filled */
    size_t kid_start; /* its first child on the pending stack */
    char *anchor;     /* registered when the collection ends: an alias to an unfinished node
                         (a cycle) is refused as unknown */
};

struct config_builder {
    struct config__ctx *c;
    size_t *pending; /* children of open collections, innermost last */
    size_t npending, cappending;
    struct config_open *open;
    size_t nopen, capopen;
    struct config_anchor *anchors;
    size_t nanchors, capanchors;
    size_t root;
    bool have_root;
};

static bool config_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = n;
    return true;
}

static struct config_pos config_mark_pos(yaml_mark_t m)
{
    return (struct config_pos){(int)m.line + 1, (int)m.column + 1};
}

/* Appends a node; returns its index or SIZE_MAX when out of memory. */
static size_t config_node_new(struct config_builder *b, const struct config__node *proto)
{
    struct config__tree *t = &b->c->tree;
    if (!config_grow((void **)&t->nodes, &t->capnodes, t->nnodes + 1, sizeof *t->nodes)) {
        b->c->oom = true;
        return SIZE_MAX;
    }
    t->nodes[t->nnodes] = *proto;
    return t->nnodes++;
}

/* Hands a finished node to its parent (or makes it the root). */
static bool config_attach(struct config_builder *b, size_t idx)
{
    if (b->nopen == 0) {
        b->root = idx;
        b->have_root = true;
        return true;
    }
    if (!config_grow((void **)&b->pending, &b->cappending, b->npending + 1, sizeof *b->pending)) {
        b->c->oom = true;
        return false;
    }
    b->pending[b->npending++] = idx;
    return true;
}

static bool config_anchor_add(struct config_builder *b, char *name, size_t node)
{
    if (!config_grow((void **)&b->anchors, &b->capanchors, b->nanchors + 1, sizeof *b->anchors)) {
        free(name);
        b->c->oom = true;
        return false;
    }
    b->anchors[b->nanchors++] = (struct config_anchor){name, node};
    return true;
}

static char *config_dup_anchor(const yaml_char_t *a, struct config_builder *b)
{
    if (!a)
        return NULL;
    char *s = strdup((const char *)a);
    if (!s)
        b->c->oom = true;
    return s;
}

/* Handles one event; false stops the build (error already recorded). */
static bool config_event(struct config_builder *b, const yaml_event_t *ev, int *docs)
{
    struct config__ctx *c = b->c;
    struct config_pos pos = config_mark_pos(ev->start_mark);
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        /* One file, one configuration: a second document would be silently ignored otherwise. */
        if (++*docs > 1) {
            config__error(c, pos, "only one YAML document is allowed in the configuration");
            return false;
        }
        return true;
    case YAML_SCALAR_EVENT: {
        struct config__node n = {.kind = CONFIG__SCALAR, .pos = pos, .owned = true, .size = 1};
        n.len = ev->data.scalar.length;
        n.implicit = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n.text = malloc(n.len + 1);
        if (!n.text) {
            c->oom = true;
            return false;
        }
        memcpy(n.text, ev->data.scalar.value, n.len);
        n.text[n.len] = '\0';
        size_t idx = config_node_new(b, &n);
        if (idx == SIZE_MAX) {
            free(n.text);
            return false;
        }
        if (ev->data.scalar.anchor) {
            char *a = config_dup_anchor(ev->data.scalar.anchor, b);
            if (!a || !config_anchor_add(b, a, idx))
                return false;
        }
        return config_attach(b, idx);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (b->nopen >= CONFIG__MAX_DEPTH) {
            config__error(c, pos, "nesting deeper than %u levels", CONFIG__MAX_DEPTH);
            return false;
        }
        struct config__node n = {.pos = pos, .size = 1};
        n.kind = ev->type == YAML_SEQUENCE_START_EVENT ? CONFIG__SEQ : CONFIG__MAP;
        size_t idx = config_node_new(b, &n);
        if (idx == SIZE_MAX)
            return false;
        if (!config_grow((void **)&b->open, &b->capopen, b->nopen + 1, sizeof *b->open)) {
            c->oom = true;
            return false;
        }
        const yaml_char_t *anchor = ev->type == YAML_SEQUENCE_START_EVENT
                                        ? ev->data.sequence_start.anchor
                                        : ev->data.mapping_start.anchor;
        char *a = config_dup_anchor(anchor, b);
        if (anchor && !a)
            return false;
        b->open[b->nopen++] = (struct config_open){idx, b->npending, a};
        return true;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        struct config_open o = b->open[--b->nopen];
        struct config__tree *t = &c->tree;
        size_t nk = b->npending - o.kid_start;
        if (!config_grow((void **)&t->kids, &t->capkids, t->nkids + nk, sizeof *t->kids)) {
            free(o.anchor);
            c->oom = true;
            return false;
        }
        size_t size = 1;
        for (size_t i = 0; i < nk; i++) {
            size_t k = b->pending[o.kid_start + i];
            t->kids[t->nkids + i] = k;
            size += t->nodes[k].size;
            if (size > CONFIG__MAX_NODES)
                break;
        }
        /* Aliases can multiply a small file into a huge tree ("billion laughs"): bounded. */
        if (size > CONFIG__MAX_NODES) {
            free(o.anchor);
            config__error(c, t->nodes[o.node].pos,
                          "configuration too large: more than %u values once aliases are expanded",
                          CONFIG__MAX_NODES);
            return false;
        }
        struct config__node *n = &t->nodes[o.node];
        n->first = t->nkids;
        n->n = nk;
        n->size = size;
        t->nkids += nk;
        b->npending = o.kid_start;
        if (o.anchor && !config_anchor_add(b, o.anchor, o.node))
            return false;
        return config_attach(b, o.node);
    }
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        size_t target = SIZE_MAX;
        for (size_t i = b->nanchors; i-- > 0;) {
            if (strcmp(b->anchors[i].name, name) == 0) {
                target = b->anchors[i].node;
                break;
            }
        }
        if (target == SIZE_MAX) {
            config__error(c, pos, "unknown or recursive alias '*%s'", name);
            return false;
        }
        struct config__node n = c->tree.nodes[target];
        n.pos = pos;
        n.owned = false;
        size_t idx = config_node_new(b, &n);
        return idx != SIZE_MAX && config_attach(b, idx);
    }
    default:
        return true;
    }
}

/* Position of byte `off` in data: libyaml's reader errors carry only an offset. */
static struct config_pos config_offset_pos(const char *data, size_t len, size_t off)
{
    struct config_pos p = {1, 1};
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\n') {
            p.line++;
            p.col = 1;
        } else if ((ch & 0xC0) != 0x80) {
            p.col++;
        }
    }
    return p;
}

/* The byte at a 1-based line/column (columns count characters): the reverse of the above. */
static size_t config_pos_offset(const char *data, size_t len, struct config_pos pos)
{
    size_t i = 0;
    for (int line = 1; line < pos.line && i < len; i++)
        if (data[i] == '\n')
            line++;
    for (int col = 1; col < pos.col && i < len; col++)
        for (i++; i < len && ((unsigned char)data[i] & 0xC0) == 0x80; i++)
            ;
    return i;
}

static void config_yaml_error(struct config__ctx *c, const yaml_parser_t *p, const char *data,
                              size_t len)
{
    if (p->error == YAML_MEMORY_ERROR) {
        c->oom = true;
        return;
    }
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        config__error(c, config_offset_pos(data, len, p->problem_offset), "YAML: %s", problem);
        return;
    }
    struct config_pos pos = config_mark_pos(p->problem_mark);
    /* YAML forbids tabs in indentation; libyaml's message does not say so. */
    size_t at = config_pos_offset(data, len, pos);
    if (at < len && data[at] == '\t')
        config__error(c, pos, "YAML: %s (a tab: indent with spaces)", problem);
    else if (p->context)
        config__error(c, pos, "YAML: %s (%s at line %d, column %d)", problem, p->context,
                      (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    else
        config__error(c, pos, "YAML: %s", problem);
}

const struct config__node *config__tree_load(struct config__ctx *c, const char *data, size_t len)
{
    struct config_builder b = {.c = c};
    yaml_parser_t parser;
    const struct config__node *root = NULL;
    int docs = 0;
    bool ok = true;

    if (len > CONFIG__MAX_INPUT) {
        config__error(c, (struct config_pos){1, 1}, "file larger than %u bytes",
                      CONFIG__MAX_INPUT);
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        c->oom = true;
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            config_yaml_error(c, &parser, data, len);
            ok = false;
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        ok = config_event(&b, &ev, &docs);
        yaml_event_delete(&ev);
        if (!ok || end)
            break;
    }
    if (ok && !b.have_root)
        config__error(c, (struct config_pos){1, 1}, "the configuration is empty");
    else if (ok)
        root = &c->tree.nodes[b.root];

    for (size_t i = 0; i < b.nopen; i++)
        free(b.open[i].anchor);
    for (size_t i = 0; i < b.nanchors; i++)
        free(b.anchors[i].name);
    free(b.open);
    free(b.anchors);
    free(b.pending);
    yaml_parser_delete(&parser);
    return c->oom ? NULL : root;
}

/* latchd's command line (args.h). */
#include "admin/args.h"

#include "admin/admin.h"
#include "core/strbuf.h"
#include "core/suggest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An option taking a VALUE, a repeatable one, a required one, a flag. */
#define OPT(n, v) { n, v, false, false }
#define MANY(n, v) { n, v, true, false }
#define MUST(n, v) { n, v, false, true }
#define FLAG(n) { n, NULL, false, false }

static const struct admin_command admin__commands[] = {
    { "status", NULL, { FLAG("json") }, admin_status },
    { "reload", NULL, { { 0 } }, admin_reload },
    { "check", NULL, { { 0 } }, admin_check },
    { "token issue", NULL,
      { MUST("app", "NAME"), MUST("email", "ADDRESS"), MANY("group", "G"), MANY("amr", "V"),
        OPT("idp", "NAME"), OPT("ttl", "DURATION") },
      admin_token_issue },
    { "keys rotate", NULL, { { 0 } }, admin_keys_rotate },
    { "revoke", NULL, { OPT("email", "ADDRESS"), OPT("app", "NAME") }, admin_revoke },
    { "ssh-ca", NULL, { MUST("app", "NAME") }, admin_ssh_ca },
    { "service-token create", "NAME", { OPT("duration", "DURATION") }, admin_service_token_create },
    { "policy-test", NULL,
      { MUST("url", "URL"), OPT("email", "E"), MANY("group", "G"), OPT("ip", "IP"),
        OPT("idp", "NAME"), MANY("amr", "V"), OPT("service-token", "NAME"), OPT("cert-cn", "CN") },
      admin_policy_test },
};

#define ADMIN__NCOMMANDS (sizeof admin__commands / sizeof admin__commands[0])

/* The command whose words start argv[i] (one or two words); *used: how many. */
static const struct admin_command *admin__command(int argc, char **argv, int i, int *used)
{
    for (size_t k = 0; k < ADMIN__NCOMMANDS; k++) {
        const char *name = admin__commands[k].name, *space = strchr(name, ' ');
        size_t first = space ? (size_t)(space - name) : strlen(name);
        if (strncmp(argv[i], name, first) || argv[i][first])
            continue;
        if (!space) {
            *used = 1;
            return &admin__commands[k];
        }
        if (i + 1 < argc && !strcmp(argv[i + 1], space + 1)) {
            *used = 2;
            return &admin__commands[k];
        }
    }
    return NULL;
}

/* "latchd token": the first word of a command, without its second. */
static const struct admin_command *admin__half_command(const char *word)
{
    for (size_t k = 0; k < ADMIN__NCOMMANDS; k++) {
        const char *name = admin__commands[k].name, *space = strchr(name, ' ');
        if (space && strlen(word) == (size_t)(space - name) && !strncmp(word, name, (size_t)(space - name)))
            return &admin__commands[k];
    }
    return NULL;
}

/* The command's synopsis: "latchd revoke --config FILE [--email ADDRESS] [--app NAME]". */
static void admin__synopsis(struct strbuf *sb, const struct admin_command *c)
{
    sb_addf(sb, "latchd %s%s%s --config FILE", c->name, c->named ? " " : "", c->named ? c->named : "");
    for (size_t i = 0; i < sizeof c->opts / sizeof c->opts[0] && c->opts[i].name; i++)
        sb_addf(sb, " %s--%s%s%s%s%s", c->opts[i].required ? "" : "[", c->opts[i].name,
                c->opts[i].value ? " " : "", c->opts[i].value ? c->opts[i].value : "",
                c->opts[i].required ? "" : "]", c->opts[i].repeat ? "..." : "");
}

/* What was typed, with "--config FILE" put in after the command's words: what to type. */
static void admin__retype(struct strbuf *sb, int argc, char **argv, int cmd_end)
{
    sb_adds(sb, "latchd");
    for (int i = 0; i < argc; i++) {
        if (i == cmd_end)
            sb_adds(sb, " --config FILE");
        sb_addf(sb, " %s", argv[i]);
    }
    if (cmd_end >= argc)
        sb_adds(sb, " --config FILE");
}

/* "latchd[ COMMAND]: message" and the hint below it, on stderr; LATCH_EXIT_USAGE. */
static int admin__usage(const struct admin_command *c, const char *fmt, const char *a1, const char *a2,
                        const struct strbuf *hint)
{
    fprintf(stderr, "latchd%s%s: ", c ? " " : "", c ? c->name : "");
    fprintf(stderr, fmt, a1, a2);
    if (hint && hint->p)
        fprintf(stderr, "\n  %s", hint->p);
    fprintf(stderr, "\n");
    return LATCH_EXIT_USAGE;
}

/* Stores option `o`'s value (NULL for a flag) in a. */
static void admin__store(struct admin_args *a, const char *o, const char *v)
{
    const char **slots[] = { &a->email, &a->app, &a->ttl, &a->url, &a->ip, &a->idp,
                             &a->service_token, &a->duration, &a->cert_cn };
    static const char *const names[] = { "email", "app", "ttl", "url", "ip", "idp",
                                         "service-token", "duration", "cert-cn" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(o, names[i]))
            *slots[i] = v;
    if (!strcmp(o, "group"))
        a->groups[a->ngroups++] = v;
    else if (!strcmp(o, "amr"))
        a->amr[a->namr++] = v;
    else if (!strcmp(o, "json"))
        a->json = true;
}

/* "--x" (or "--x=v") for command c at argv[*i]: stored, 0; else LATCH_EXIT_USAGE after saying
 * what the command takes. */
static int admin__option(struct admin_args *a, const struct admin_command *c, int argc, char **argv,
                         int *i, const char **seen)
{
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - arg - 2 : (long)strlen(arg) - 2), arg + 2);
    const struct admin_opt *o = NULL;
    const char *names[sizeof c->opts / sizeof c->opts[0]] = { 0 };
    size_t n = 0;
    for (; n < sizeof c->opts / sizeof c->opts[0] && c->opts[n].name; n++) {
        names[n] = c->opts[n].name;
        if (strncmp(arg, "--", 2) == 0 && !strcmp(name, c->opts[n].name))
            o = &c->opts[n];
    }
    struct strbuf hint;
    sb_init(&hint, 4096);
    int rc = 0;
    if (!o) {
        const char *near = strncmp(arg, "--", 2) ? NULL : suggest_closest(name, names, n);
        char mean[96] = "";
        if (near)
            snprintf(mean, sizeof mean, " (did you mean --%s?)", near);
        sb_adds(&hint, n ? "it takes: " : "it takes no option: ");
        admin__synopsis(&hint, c);
        fprintf(stderr, "latchd %s: unknown option '%s'%s\n  %s\n", c->name, arg, mean, hint.p);
        rc = LATCH_EXIT_USAGE;
    } else if (!o->value && eq) {
        fprintf(stderr, "latchd %s: --%s takes no value\n", c->name, o->name);
        rc = LATCH_EXIT_USAGE;
    } else if (o->value && !eq && (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2))) {
        fprintf(stderr, "latchd %s: --%s needs a value: --%s %s\n", c->name, o->name, o->name, o->value);
        rc = LATCH_EXIT_USAGE;
    } else if (!o->repeat && seen[o - c->opts]) {
        fprintf(stderr, "latchd %s: --%s is given twice\n", c->name, o->name);
        rc = LATCH_EXIT_USAGE;
    } else {
        seen[o - c->opts] = arg;
        admin__store(a, o->name, !o->value ? NULL : eq ? eq + 1 : argv[++*i]);
    }
    sb_free(&hint);
    return rc;
}

/* An unknown first word: a typo of a command, half of a two-word command, or a file meant as
 * the configuration. */
static int admin__unknown_command(const char *word, const char *config)
{
    const struct admin_command *half = admin__half_command(word);
    struct strbuf hint;
    sb_init(&hint, 4096);
    if (half) {
        admin__synopsis(&hint, half);
        admin__usage(NULL, "the command is 'latchd %s'", half->name, NULL, &hint);
        sb_free(&hint);
        return LATCH_EXIT_USAGE;
    }
    /* typos of a command's first word ("tokn" for "token issue") */
    char first[ADMIN__NCOMMANDS][32];
    const char *names[ADMIN__NCOMMANDS];
    for (size_t k = 0; k < ADMIN__NCOMMANDS; k++) {
        snprintf(first[k], sizeof first[k], "%.*s", (int)strcspn(admin__commands[k].name, " "),
                 admin__commands[k].name);
        names[k] = first[k];
    }
    const char *near = suggest_closest(word, names, ADMIN__NCOMMANDS);
    bool file = strchr(word, '/') || strstr(word, ".yaml") || strstr(word, ".yml");
    if (near) {
        const struct admin_command *c = &admin__commands[(const char (*)[32])near - first];
        admin__synopsis(&hint, c);
        admin__usage(NULL, "unknown command '%s' (did you mean '%s'?)", word, c->name, &hint);
    } else if (file && !config) {
        sb_addf(&hint, "to run the gateway with it: latchd --config %s\n  to check it: latchd check %s",
                word, word);
        admin__usage(NULL, "'%s' is not a command", word, NULL, &hint);
    } else {
        sb_adds(&hint, "the commands:");
        for (size_t k = 0; k < ADMIN__NCOMMANDS; k++)
            sb_addf(&hint, " %s%s", admin__commands[k].name, k + 1 < ADMIN__NCOMMANDS ? "," : "");
        sb_adds(&hint, " (latchd --help says more)");
        admin__usage(NULL, "unknown command '%s'", word, NULL, &hint);
    }
    sb_free(&hint);
    return LATCH_EXIT_USAGE;
}

int admin_args_parse(int argc, char **argv, struct admin_args *a)
{
    memset(a, 0, sizeof *a);
    /* as many as could be given: no argument is ever dropped or written past an array */
    a->groups = calloc((size_t)argc + 1, sizeof *a->groups);
    a->amr = calloc((size_t)argc + 1, sizeof *a->amr);
    const char **words = calloc((size_t)argc + 1, sizeof *words);
    const char *seen[10] = { 0 };
    int nwords = 0, cmd_end = 0, rc = 0;
    if (!a->groups || !a->amr || !words) {
        fprintf(stderr, "latchd: out of memory\n");
        rc = LATCH_EXIT_FAILED;
        goto out;
    }
    for (int i = 0; i < argc && !rc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--config") || !strncmp(arg, "--config=", 9)) {
            const char *v = arg[8] == '=' ? arg + 9 : i + 1 < argc ? argv[++i] : NULL;
            if (!v || !*v)
                rc = admin__usage(NULL, "--config needs a FILE: --config /etc/latch/latch.yaml", NULL, NULL, NULL);
            else if (a->config)
                rc = admin__usage(NULL, "--config is given twice ('%s' and '%s')", a->config, v, NULL);
            a->config = v;
        } else if (arg[0] == '-' && arg[1]) {
            if (a->cmd)
                rc = admin__option(a, a->cmd, argc, argv, &i, seen);
            else
                rc = admin__usage(NULL, "'%s' is not an option of latchd itself: options go after the "
                                  "command (latchd --help lists them)", arg, NULL, NULL);
        } else if (!a->cmd && nwords == 0) {
            int used = 0;
            a->cmd = admin__command(argc, argv, i, &used);
            if (!a->cmd)
                rc = admin__unknown_command(arg, a->config);
            i += used - 1;
            cmd_end = i + 1;
        } else {
            words[nwords++] = arg;
        }
    }
    if (rc)
        goto out;
    struct strbuf hint;
    sb_init(&hint, 8192);
    const struct admin_command *c = a->cmd;
    int want = c && c->named ? 1 : 0;
    if (c && !a->config && nwords == want + 1) {
        a->config = words[want]; /* `latchd check latch.yaml`: nothing else could be meant */
        nwords--;
    }
    if (c && c->named && nwords == 0) {
        admin__synopsis(&hint, c);
        rc = admin__usage(c, "give the token a %s", c->named, NULL, &hint);
    } else if (nwords > want) {
        if (c && !a->config && nwords == want + 2)
            sb_addf(&hint, "which is the configuration? Type: latchd %s %s --config %s",
                    c->name, words[0], words[1]);
        else if (c)
            admin__synopsis(&hint, c);
        rc = admin__usage(c, "unexpected argument '%s'", words[want], NULL, hint.len ? &hint : NULL);
    } else if (!a->config) {
        admin__retype(&hint, argc, argv, cmd_end);
        rc = admin__usage(c, "which configuration file? Type:", NULL, NULL, &hint);
    } else {
        a->name = want ? words[0] : NULL;
    }
    sb_free(&hint);
out:
    free(words);
    if (rc)
        admin_args_free(a);
    return rc;
}

void admin_args_free(struct admin_args *a)
{
    free(a->groups);
    free(a->amr);
    a->groups = a->amr = NULL;
}

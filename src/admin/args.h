/* latchd's command line, parsed once for every command (admin.h): which command, its
 * configuration file (--config FILE, or a lone path where nothing else could be meant) and its
 * options. A mistake is answered with exactly what to type instead, never the whole usage. */
#ifndef LATCH_ADMIN_ARGS_H
#define LATCH_ADMIN_ARGS_H

#include "core/exitcode.h"

#include <stdbool.h>
#include <stddef.h>

struct admin_args;

/* One command: its words, the NAME it takes (or NULL), its options (name, and the VALUE word
 * for options that take one, NULL for flags), and what runs it. */
struct admin_opt {
    const char *name, *value;
    bool repeat;   /* may be given several times (--group) */
    bool required; /* the command says so when it is missing */
};

struct admin_command {
    const char *name;  /* "check", "token issue" */
    const char *named; /* "NAME" for service-token create, else NULL */
    struct admin_opt opts[10];
    int (*run)(const struct admin_args *a);
};

/* The command line: pointers into argv. groups and amr hold as many as were given. */
struct admin_args {
    const struct admin_command *cmd; /* NULL: run the gateway */
    const char *config;
    const char *name; /* the command's NAME */
    const char *email, *app, *ttl, *url, *ip, *idp, *service_token, *duration, *cert_cn;
    const char **groups;
    size_t ngroups;
    const char **amr;
    size_t namr;
    bool json;
};

/* Parses argv[1..argc) (no --help or --version there: the caller answers those). 0 with *a
 * filled (free with admin_args_free), or LATCH_EXIT_USAGE after saying on stderr what to type. */
int admin_args_parse(int argc, char **argv, struct admin_args *a);
void admin_args_free(struct admin_args *a);

#endif

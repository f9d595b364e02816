/* Loading and validating the YAML configuration (SPEC.md §2), with libyaml: the parsed file and
 * its types, the bottom layer that everything reading a configuration builds on (it includes
 * nothing but core/ and http/). Errors are collected, never fatal at the first: each is
 * "FILE:LINE:COL: message". */
#ifndef LATCH_CONFIG_H
#define LATCH_CONFIG_H

#include "config/config-t.h"

#include <stdio.h>

/* A list of error lines, each already formatted as "FILE:LINE:COL: message". */
struct config_errors {
    char **lines;
    size_t n;
};

/* Parses and validates the file at `path`. Returns the config, or NULL with at least one error
 * appended to `errs`. Refuses: YAML syntax errors, unknown keys, wrong types, missing required
 * keys, duplicate app/policy/idp/service-token names, invalid addresses, CIDRs, durations, origin
 * URLs, selectors, the same domain pattern twice, a service_token selector naming no service
 * token, an idp in allowed_idps naming no identity provider. Of the files the config names only
 * branding's logo is read here (pages show its content); the others (TLS certificates, keys and
 * CA bundles, client secrets, the Redis store's key and password) are opened, and the domain
 * patterns compiled, by whoever builds a runtime from the config (server/runtime.h:
 * runtime_check, runtime_new; store/cluster.h: cluster_redis_open), at the positions the config
 * keeps. */
struct config *config_load(const char *path, struct config_errors *errs);

/* Same, from a buffer; `name` is what errors print as the file name. */
struct config *config_load_buffer(const char *name, const char *data, size_t len,
                                  struct config_errors *errs);

void config_free(struct config *cfg);
/* The longest session any app or policy grants: no token outlives it. */
int64_t config_longest_session_s(const struct config *cfg);
/* Appends "FILE:LINE:COL: message" (or "FILE: message" when pos is 0:0, or the message alone
 * when file is NULL) to errs; out of memory drops the line. For checks made after loading, at the positions the config keeps. */
void config_errors_add(struct config_errors *errs, const char *file, struct config_pos pos,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void config_errors_print(const struct config_errors *errs, FILE *out);
void config_errors_clear(struct config_errors *errs);

/* Sorts errs->lines[from..] by the LINE:COL after "FILE:" (stable; lines of another form
 * last), so that errors found in several passes read in the file's order. */
void config_errors_sort(struct config_errors *errs, size_t from, const char *file);

/* "90s", "10m", "24h", "7d", "6w", "500ms", "1h30m" -> milliseconds. -1 when malformed or
 * negative or overflowing. */
int64_t config_parse_duration_ms(const char *s);

/* "10.0.0.0/8", "::1/128", "192.168.1.7" (a host) -> cidr. 0 on success, -1 malformed. */
int config_parse_cidr(const char *s, struct cidr *out);

/* True when the address (16 bytes, IPv4 mapped) is inside the block. */
bool cidr_contains(const struct cidr *c, const uint8_t addr[16]);

#endif

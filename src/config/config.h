/* Loading and validating the YAML configuration (SPEC.md §2), with libyaml.
 * Errors are collected, never fatal at the first: each is "FILE:LINE:COL: message". */
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
 * URLs, host/path patterns, selectors, a service_token selector naming no service token, an idp
 * in allowed_idps naming no identity provider. Files named by the config (TLS certs, secrets)
 * are not opened here. */
struct config *config_load(const char *path, struct config_errors *errs);

/* Same, from a buffer; `name` is what errors print as the file name. */
struct config *config_load_buffer(const char *name, const char *data, size_t len,
                                  struct config_errors *errs);

void config_free(struct config *cfg);
void config_errors_print(const struct config_errors *errs, FILE *out);
void config_errors_clear(struct config_errors *errs);

/* "90s", "10m", "24h", "7d", "6w", "500ms", "1h30m" -> milliseconds. -1 when malformed or
 * negative or overflowing. */
int64_t config_parse_duration_ms(const char *s);

/* "10.0.0.0/8", "::1/128", "192.168.1.7" (a host) -> cidr. 0 on success, -1 malformed. */
int config_parse_cidr(const char *s, struct cidr *out);

/* True when the address (16 bytes, IPv4 mapped) is inside the block. */
bool cidr_contains(const struct cidr *c, const uint8_t addr[16]);

#endif

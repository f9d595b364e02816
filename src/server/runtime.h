/* Building a runtime (request/runtime.h) from a loaded configuration: what the daemon would
 * refuse in it, and the runtime itself. */
#ifndef LATCH_RUNTIME_H
#define LATCH_RUNTIME_H

#include "config/config.h"
#include "request/runtime.h"

/* What the daemon would refuse in a loaded configuration beyond config_load's own checks, found
 * by reading only (nothing is created or written: state_dir neither): the routes (every invalid
 * domain pattern); every file it names (TLS certificates, that they parse and that each key is
 * its certificate's; client_ca bundles; origin_tls.ca_file; client_secret_file; with Redis,
 * store_key_file and store_password_file); a state_dir or log path that is not what it must be. Each error is added to errs as "FILE:LINE:COL: message" at the key that names what
 * failed, in the words runtime_new uses. Adds "FILE:LINE:COL: warning: message" to warns for
 * what works but is likely not meant: an allow policy with no identity provider to sign in
 * with, a plain listener on a network address without `public:`, an auth_domain on a port no
 * listener serves, a log directory that does not exist yet, a store_key_file without Redis.
 * 0, or -1 when it added errors. */
int runtime_check(const struct config *cfg, struct config_errors *errs, struct config_errors *warns);

/* Builds a runtime from a loaded config (takes ownership of cfg, also on failure): loads what
 * runtime_check loads, with the same errors, then creates state_dir (0700) and its secret and
 * opens the log files. NULL with errors added to `errs` ("FILE:LINE:COL: message"). */
struct runtime *runtime_new(struct config *cfg, struct config_errors *errs);

/* The auth domain's URL (SPEC.md §5: https when a listener serves TLS), malloc'd; NULL when
 * out of memory. */
char *runtime_auth_url(const struct config *cfg);

#endif

/* libFuzzer target for the configuration loader (src/config/): any bytes go through
 * config_load_buffer, and whatever it builds or reports is freed again. */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_errors errs = {0};
    struct config *cfg = config_load_buffer("fuzz.yaml", (const char *)data, size, &errs);
    /* Contract: a config, or at least one error; never both, never neither. */
    if ((cfg != NULL) == (errs.n != 0))
        abort();
    config_free(cfg);
    config_errors_clear(&errs);
    return 0;
}

/* libFuzzer target: values read back from Redis (src/store/seal.c). Redis is not trusted
 * (README, "Several nodes"): whatever bytes it returns, store_unseal returns NULL unless they
 * are a value sealed under our key, for this very name, not expired; a sealed value comes back
 * byte for byte, and any single flipped bit, another name or a past expiry is refused. */
#include "store/seal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const unsigned char fuzz_key[STORE_KEY_BYTES] = "0123456789abcdef0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    /* whatever Redis hands back: nothing of ours unless it was sealed by us */
    char *plain = store_unseal(fuzz_key, "latch:grant:x", data, size, &n);
    if (plain) {
        fprintf(stderr, "seal: unsealed bytes that were never sealed\n");
        abort();
    }
    if (size == 0)
        return 0;
    /* the input as a value: sealed, it comes back; altered, it does not */
    size_t sl = 0;
    int64_t later = (int64_t)time(NULL) + 3600;
    unsigned char *box = store_seal(fuzz_key, "latch:flow:y", data, size, later, &sl);
    if (!box)
        return 0;
    plain = store_unseal(fuzz_key, "latch:flow:y", box, sl, &n);
    if (!plain || n != size || memcmp(plain, data, size) != 0) {
        fprintf(stderr, "seal: a sealed value did not come back\n");
        abort();
    }
    free(plain);
    if (store_unseal(fuzz_key, "latch:flow:z", box, sl, &n)) {
        fprintf(stderr, "seal: a value moved under another name was accepted\n");
        abort();
    }
    size_t bit = (data[0] * 131u + size) % (sl * 8);
    box[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    if ((plain = store_unseal(fuzz_key, "latch:flow:y", box, sl, &n))) {
        fprintf(stderr, "seal: a value with a flipped bit was accepted\n");
        abort();
    }
    free(box);
    box = store_seal(fuzz_key, "latch:flow:y", data, size, (int64_t)time(NULL) - 1, &sl);
    if (box && (plain = store_unseal(fuzz_key, "latch:flow:y", box, sl, &n))) {
        fprintf(stderr, "seal: an expired value was accepted\n");
        abort();
    }
    free(box);
    return 0;
}

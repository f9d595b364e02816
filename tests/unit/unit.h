/* What several unit tests share: a temporary directory (a state_dir, certificate files) made
 * under /tmp and removed with everything in it. Included by tests/unit/<folder>/test_*.c as
 * "../unit.h"; the Makefile rebuilds every test when it changes. */
#ifndef LATCH_TEST_UNIT_H
#define LATCH_TEST_UNIT_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* /tmp/latch-test-NAME-XXXXXX, made; 0, or -1 when it cannot be. dir holds 64 bytes. */
static inline int unit_tmpdir(char dir[64], const char *name)
{
    snprintf(dir, 64, "/tmp/latch-test-%s-XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

static inline int unit__rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Removes dir and everything below it: 0, or -1. */
static inline int unit_rmtree(const char *dir)
{
    return nftw(dir, unit__rm, 16, FTW_DEPTH | FTW_PHYS);
}

#endif

/* Golden files: a test's output compared byte for byte with tests/golden/DIR/NAME (relative to
 * $NUBO_SRCDIR, default the current directory), or written there instead when
 * NUBO_TEST_REGENERATE=1. For cmocka programs (failures are printed with print_error). */
#ifndef NUBO_TEST_GOLDEN_H
#define NUBO_TEST_GOLDEN_H

#include <stddef.h>

struct nb_buf;

/* Compares 'len' bytes of 'data' with the golden file DIR/NAME. Returns 0, or -1 after printing
 * where they differ (or why the file could not be read or written). */
int nbtest_golden(const char *dir, const char *name, const char *data, size_t len);

/* nbtest_golden() of the buffer 'b', which it frees either way. */
int nbtest_golden_buf(const char *dir, const char *name, struct nb_buf *b);

#endif

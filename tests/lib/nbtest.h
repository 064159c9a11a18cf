/* Small helpers shared by the cmocka test programs. Include after <cmocka.h>. */
#ifndef NUBO_TEST_NBTEST_H
#define NUBO_TEST_NBTEST_H

#include "nubo/clock.h"
#include "nubo/error.h"

/* Fails the test, with the nb_error 'err' in the message, unless 'cond' is true (a call that
 * returned 0 compared "== 0", or a pointer that is not NULL). */
#define assert_ok(cond, err)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail_msg("%s failed: %s: %s (%s)", #cond, nb_errcode_name((err).code), (err).msg,      \
                     (err).detail);                                                                \
        }                                                                                          \
    } while (0)

/* As assert_ok() for a call that returns 0 on success. */
#define assert_zero(call, err) assert_ok((call) == 0, err)

#endif

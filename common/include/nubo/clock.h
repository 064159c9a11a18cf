/* Time for deadlines and durations: a clock that does not jump when the wall clock is set. */
#ifndef NUBO_CLOCK_H
#define NUBO_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds (an arbitrary origin: compare two readings only). */
int64_t nb_monotonic_ms(void);

#endif

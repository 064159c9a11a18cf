/* Time for deadlines and durations: a clock that does not jump when the wall clock is set. */
#ifndef NUBO_CLOCK_H
#define NUBO_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds (an arbitrary origin: compare two readings only). */
int64_t nb_monotonic_ms(void);

/* The CLOCK_MONOTONIC time 'ms' milliseconds from now, for pthread_cond_timedwait() on a
 * condition variable whose clock is CLOCK_MONOTONIC (pthread_condattr_setclock()). */
struct timespec nb_monotonic_after(long ms);

#endif

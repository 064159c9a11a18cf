/* Metrics registry exposed in Prometheus text format (version 0.0.4).
 *
 * Counters, gauges and histograms, each a family by name with optional label sets. Updates are
 * lock-free atomics; registration takes a lock and is meant for start-up or first use. */
#ifndef NUBO_METRICS_H
#define NUBO_METRICS_H

#include <stdint.h>

struct nb_metrics;
struct nb_counter;
struct nb_gauge;
struct nb_histogram;

/* Returns a new registry; free with nb_metrics_free() (accepts NULL). */
struct nb_metrics *nb_metrics_new(void);
void nb_metrics_free(struct nb_metrics *m);

/* Returns the series 'name'{'labels'}, creating it on first call. 'labels' is Prometheus label
 * text without braces ("action=\"DescribeRegions\",code=\"200\"") or NULL. The series is owned
 * by the registry. Registering one name as two kinds returns NULL. */
struct nb_counter *nb_metrics_counter(struct nb_metrics *m, const char *name, const char *help,
                                      const char *labels);
struct nb_gauge *nb_metrics_gauge(struct nb_metrics *m, const char *name, const char *help,
                                  const char *labels);
/* Buckets are latency seconds: 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
 * 1, 2.5, 5, 10, +Inf. */
struct nb_histogram *nb_metrics_histogram(struct nb_metrics *m, const char *name, const char *help,
                                          const char *labels);

void nb_counter_add(struct nb_counter *c, uint64_t n);
void nb_gauge_set(struct nb_gauge *g, int64_t v);
void nb_gauge_add(struct nb_gauge *g, int64_t delta);
void nb_histogram_observe(struct nb_histogram *h, double seconds);

/* Renders every series in text format. Returns a malloc()ed string the caller free()s. */
char *nb_metrics_render(struct nb_metrics *m);

#endif

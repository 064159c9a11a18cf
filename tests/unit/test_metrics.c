/* Unit tests of the metrics registry: series identity, histogram buckets, the exact Prometheus
 * text, and atomic updates from several threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nubo/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void series_are_created_once(void **state)
{
    struct nb_metrics *m = nb_metrics_new();
    struct nb_counter *a = nb_metrics_counter(m, "req_total", "Requests.", "code=\"200\"");
    struct nb_counter *b = nb_metrics_counter(m, "req_total", "Requests.", "code=\"500\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(nb_metrics_counter(m, "req_total", NULL, "code=\"200\""), a);

    struct nb_gauge *g = nb_metrics_gauge(m, "up", NULL, NULL);
    assert_ptr_equal(nb_metrics_gauge(m, "up", NULL, ""), g);
    nb_metrics_free(m);
    nb_metrics_free(NULL);
}

static void kind_conflict_returns_null(void **state)
{
    struct nb_metrics *m = nb_metrics_new();
    assert_non_null(nb_metrics_counter(m, "thing", "A thing.", NULL));
    assert_null(nb_metrics_gauge(m, "thing", NULL, NULL));
    assert_null(nb_metrics_histogram(m, "thing", NULL, "other=\"labels\""));
    assert_non_null(nb_metrics_counter(m, "thing", NULL, "other=\"labels\""));
    assert_null(nb_metrics_counter(m, "9starts_with_digit", NULL, NULL));
    assert_null(nb_metrics_counter(m, "has-dash", NULL, NULL));
    assert_null(nb_metrics_counter(m, "", NULL, NULL));
    nb_metrics_free(m);
}

static void render_exact_text(void **state)
{
    struct nb_metrics *m = nb_metrics_new();
    struct nb_counter *a = nb_metrics_counter(m, "nubo_requests_total", "Requests handled.",
                                              "action=\"A\",code=\"200\"");
    struct nb_gauge *g = nb_metrics_gauge(m, "nubo_inflight", "In flight\\ now\nsecond line", NULL);
    /* Registered after the gauge, printed with its family. */
    struct nb_counter *b =
        nb_metrics_counter(m, "nubo_requests_total", "ignored", "action=\"B\",code=\"500\"");
    struct nb_histogram *h = nb_metrics_histogram(m, "nubo_latency_seconds", "Latency.", NULL);

    nb_counter_add(a, 3);
    nb_counter_add(b, 1);
    nb_gauge_set(g, 5);
    nb_gauge_add(g, -7);
    nb_histogram_observe(h, 0.0005); /* on a bound: counted in le="0.0005" */
    nb_histogram_observe(h, 0.003);
    nb_histogram_observe(h, 0.2);
    nb_histogram_observe(h, 20);

    char *text = nb_metrics_render(m);
    assert_non_null(text);
    assert_string_equal(text, "# HELP nubo_requests_total Requests handled.\n"
                              "# TYPE nubo_requests_total counter\n"
                              "nubo_requests_total{action=\"A\",code=\"200\"} 3\n"
                              "nubo_requests_total{action=\"B\",code=\"500\"} 1\n"
                              "# HELP nubo_inflight In flight\\\\ now\\nsecond line\n"
                              "# TYPE nubo_inflight gauge\n"
                              "nubo_inflight -2\n"
                              "# HELP nubo_latency_seconds Latency.\n"
                              "# TYPE nubo_latency_seconds histogram\n"
                              "nubo_latency_seconds_bucket{le=\"0.0005\"} 1\n"
                              "nubo_latency_seconds_bucket{le=\"0.001\"} 1\n"
                              "nubo_latency_seconds_bucket{le=\"0.0025\"} 1\n"
                              "nubo_latency_seconds_bucket{le=\"0.005\"} 2\n"
                              "nubo_latency_seconds_bucket{le=\"0.01\"} 2\n"
                              "nubo_latency_seconds_bucket{le=\"0.025\"} 2\n"
                              "nubo_latency_seconds_bucket{le=\"0.05\"} 2\n"
                              "nubo_latency_seconds_bucket{le=\"0.1\"} 2\n"
                              "nubo_latency_seconds_bucket{le=\"0.25\"} 3\n"
                              "nubo_latency_seconds_bucket{le=\"0.5\"} 3\n"
                              "nubo_latency_seconds_bucket{le=\"1\"} 3\n"
                              "nubo_latency_seconds_bucket{le=\"2.5\"} 3\n"
                              "nubo_latency_seconds_bucket{le=\"5\"} 3\n"
                              "nubo_latency_seconds_bucket{le=\"10\"} 3\n"
                              "nubo_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                              "nubo_latency_seconds_sum 20.2035\n"
                              "nubo_latency_seconds_count 4\n");
    free(text);
    nb_metrics_free(m);
}

static void histogram_with_labels(void **state)
{
    struct nb_metrics *m = nb_metrics_new();
    struct nb_histogram *h = nb_metrics_histogram(m, "op_seconds", NULL, "op=\"x\"");
    nb_histogram_observe(h, 1.5);
    nb_histogram_observe(h, -1); /* a clock step backwards counts as zero */

    char *text = nb_metrics_render(m);
    assert_non_null(text);
    assert_null(strstr(text, "# HELP")); /* no help given, none printed */
    assert_non_null(strstr(text, "# TYPE op_seconds histogram\n"));
    assert_non_null(strstr(text, "op_seconds_bucket{op=\"x\",le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(text, "op_seconds_bucket{op=\"x\",le=\"1\"} 1\n"));
    assert_non_null(strstr(text, "op_seconds_bucket{op=\"x\",le=\"2.5\"} 2\n"));
    assert_non_null(strstr(text, "op_seconds_sum{op=\"x\"} 1.5\n"));
    assert_non_null(strstr(text, "op_seconds_count{op=\"x\"} 2\n"));
    free(text);
    nb_metrics_free(m);
}

#define THREADS    4
#define ITERATIONS 100000

struct worker {
    struct nb_metrics *m;
    int id;
};

static void *hammer(void *arg)
{
    const struct worker *w = arg;
    /* Looking the series up from every thread also exercises concurrent registration. */
    struct nb_counter *c = nb_metrics_counter(w->m, "hits_total", NULL, NULL);
    struct nb_gauge *g = nb_metrics_gauge(w->m, "level", NULL, NULL);
    struct nb_histogram *h = nb_metrics_histogram(w->m, "lat_seconds", NULL, NULL);
    for (int i = 0; i < ITERATIONS; i++) {
        nb_counter_add(c, 1);
        nb_gauge_add(g, (i % 2) ? 1 : -1);
        nb_histogram_observe(h, 0.001);
    }
    return NULL;
}

static void concurrent_updates_add_up(void **state)
{
    struct nb_metrics *m = nb_metrics_new();
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){m, i};
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
    }
    char *text = nb_metrics_render(m);
    assert_non_null(text);
    assert_non_null(strstr(text, "\nhits_total 400000\n"));
    assert_non_null(strstr(text, "\nlevel 0\n"));
    assert_non_null(strstr(text, "\nlat_seconds_bucket{le=\"0.001\"} 400000\n"));
    assert_non_null(strstr(text, "\nlat_seconds_sum 400\n"));
    assert_non_null(strstr(text, "\nlat_seconds_count 400000\n"));
    free(text);
    nb_metrics_free(m);
}

static void many_series_survive_rehash(void **state)
{
    struct nb_metrics *m = nb_metrics_new();
    struct nb_counter *first[300];
    char labels[32];
    for (int i = 0; i < 300; i++) {
        snprintf(labels, sizeof labels, "n=\"%d\"", i);
        first[i] = nb_metrics_counter(m, "series_total", NULL, labels);
        assert_non_null(first[i]);
        nb_counter_add(first[i], (uint64_t)i);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(labels, sizeof labels, "n=\"%d\"", i);
        assert_ptr_equal(nb_metrics_counter(m, "series_total", NULL, labels), first[i]);
    }
    char *text = nb_metrics_render(m);
    assert_non_null(strstr(text, "series_total{n=\"0\"} 0\nseries_total{n=\"1\"} 1\n"));
    assert_non_null(strstr(text, "series_total{n=\"299\"} 299\n"));
    free(text);
    nb_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(series_are_created_once),   cmocka_unit_test(kind_conflict_returns_null),
        cmocka_unit_test(render_exact_text),         cmocka_unit_test(histogram_with_labels),
        cmocka_unit_test(concurrent_updates_add_up), cmocka_unit_test(many_series_survive_rehash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

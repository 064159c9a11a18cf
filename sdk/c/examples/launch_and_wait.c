/* Launches one instance and waits, with a time limit, until it is running, printing its state
 * as it changes.
 *
 *   cc launch_and_wait.c $(pkg-config --cflags --libs nubo) -o launch_and_wait
 *   ./launch_and_wait IMAGE_ID [INSTANCE_TYPE [TIMEOUT_SECONDS]]
 *
 * Until nubo has a scheduler and a compute agent, instances stay "pending": the wait then ends
 * at the time limit, and the program says so, terminates the instance and exits 2. Exits 0 when
 * the instance is running, 1 on an API error. */
#include <nubo/nubo.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int show_state(const struct nubo_instance *in, double elapsed_s, void *arg)
{
    char *last = arg;
    if (strcmp(last, in->state)) {
        printf("%6.1f s  %s  %s\n", elapsed_s, in->id, in->state);
        fflush(stdout);
        snprintf(last, 32, "%s", in->state);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: launch_and_wait IMAGE_ID [INSTANCE_TYPE [TIMEOUT_SECONDS]]\n");
        return 1;
    }
    double timeout = argc > 3 ? atof(argv[3]) : 60;
    struct nubo_error err;
    struct nubo_client *client = nubo_client_from_config(NULL, NULL, &err);
    if (!client) {
        fprintf(stderr, "launch_and_wait: %s\n", err.message);
        return 1;
    }
    struct nubo_tag tag = {"Name", "launch-and-wait"};
    struct nubo_run_params params = {
        .image_id = argv[1],
        .instance_type = argc > 2 ? argv[2] : NULL,
        .tags = &tag,
        .n_tags = 1,
    };
    struct nubo_instance_list *launched = nubo_instances_run(client, &params, &err);
    if (!launched) {
        fprintf(stderr, "launch_and_wait: could not launch: %s: %s\n", err.code, err.message);
        nubo_client_free(client);
        return 1;
    }
    char id[32];
    snprintf(id, sizeof id, "%s", launched->items[0].id);
    printf("launched %s (%s)\n", id, launched->items[0].state);
    nubo_instance_list_free(launched);

    char last[32] = "";
    int rc = 0;
    struct nubo_instance *in =
        nubo_instance_wait(client, id, "running", timeout, 500, show_state, last, &err);
    if (in) {
        printf("%s is running\n", id);
        nubo_instance_free(in);
    } else if (!strcmp(err.code, "Timeout")) {
        printf("gave up after %.0f s: %s\n", timeout, err.message);
        printf("(instances stay pending until nubo's scheduler and compute agent run them)\n");
        if (nubo_instance_action(client, id, NUBO_INSTANCE_TERMINATE, NULL, &err) == 0) {
            printf("terminated %s\n", id);
        }
        rc = 2;
    } else {
        fprintf(stderr, "launch_and_wait: %s: %s\n", err.code, err.message);
        rc = 1;
    }
    nubo_client_free(client);
    return rc;
}

/* Lists the caller's instances, a page of 50 at a time, with libnubo's iterator.
 *
 *   cc list_instances.c $(pkg-config --cflags --libs nubo) -o list_instances
 *   NUBO_ENDPOINT=http://127.0.0.1:8773 NUBO_ACCESS_KEY=... NUBO_SECRET_KEY=... ./list_instances
 *
 * The client is configured from the environment, or from ~/.config/nubo/config
 * (NUBO_PROFILE picks a profile). Exits 0, or 1 after printing the API's error. */
#include <nubo/nubo.h>

#include <stdio.h>

int main(void)
{
    struct nubo_error err;
    struct nubo_client *client = nubo_client_from_config(NULL, NULL, &err);
    if (!client) {
        fprintf(stderr, "list_instances: %s\n", err.message);
        return 1;
    }
    struct nubo_instance_iter *it = nubo_instance_iter_new(client, NULL, 0, 50);
    const struct nubo_instance *in;
    int rc, n = 0;
    while ((rc = nubo_instance_iter_next(it, &in, &err)) == 1) {
        printf("%s  %-13s  %-10s  %s\n", in->id, in->state, in->instance_type, in->image_id);
        n++;
    }
    nubo_instance_iter_free(it);
    nubo_client_free(client);
    if (rc < 0) {
        fprintf(stderr, "list_instances: %s: %s (request %s)\n", err.code, err.message,
                err.request_id);
        return 1;
    }
    printf("%d instance%s\n", n, n == 1 ? "" : "s");
    return 0;
}

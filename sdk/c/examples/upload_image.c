/* Uploads a disk image with progress: makes an image record for the file, streams the file to
 * the image store (libnubo hashes it first and signs the SHA-256, so the API stores nothing but
 * the exact bytes), and waits for the import of a VHD, VMDK or OVA.
 *
 *   cc upload_image.c $(pkg-config --cflags --libs nubo) -o upload_image
 *   NUBO_ENDPOINT=http://127.0.0.1:8773 NUBO_ACCESS_KEY=... NUBO_SECRET_KEY=... \
 *       ./upload_image disk.qcow2 qcow2 my-image
 *
 * Prints the progress of each phase as a percentage, then "IMAGE_ID available". Exits 0, or 1
 * after printing the API's error. */
#include <nubo/nubo.h>

#include <stdio.h>
#include <string.h>

/* Prints a line each time the phase changes or another tenth of it is done. */
struct progress {
    int phase;
    int tenth;
};

static int on_progress(enum nubo_transfer_phase phase, uint64_t done, uint64_t total, void *arg)
{
    struct progress *p = arg;
    int tenth = total ? (int)(done * 10 / total) : 10;
    if ((int)phase != p->phase || tenth != p->tenth) {
        printf("%s %3d%%\n", phase == NUBO_TRANSFER_HASH ? "hashing" : "uploading", tenth * 10);
        p->phase = (int)phase;
        p->tenth = tenth;
    }
    return 0; /* non-zero would cancel the upload */
}

static int on_task(const struct nubo_image_task *task, double elapsed_s, void *arg)
{
    (void)arg;
    printf("import %s %d%% (%.0f s)\n", task->state, task->progress, elapsed_s);
    return 0;
}

static int fail(const char *what, const struct nubo_error *err)
{
    fprintf(stderr, "upload_image: %s: %s: %s\n", what, err->code, err->message);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: upload_image FILE FORMAT NAME\n");
        return 2;
    }
    struct nubo_error err;
    struct nubo_client *client = nubo_client_from_config(NULL, NULL, &err);
    if (!client) {
        return fail("configuration", &err);
    }
    struct nubo_image_params params = {.name = argv[3], .description = "made by upload_image"};
    struct nubo_image *image = nubo_image_create(client, &params, argv[2], &err);
    if (!image) {
        nubo_client_free(client);
        return fail("create", &err);
    }
    struct progress p = {-1, -1};
    struct nubo_upload_result up;
    int rc = 0;
    if (nubo_image_upload(client, image->id, argv[1], NULL, on_progress, &p, &up, &err) < 0) {
        rc = fail("upload", &err);
    } else if (up.import_task_id[0]) {
        struct nubo_image_task *task =
            nubo_image_task_wait(client, up.import_task_id, 600, 500, on_task, NULL, &err);
        if (!task) {
            rc = fail("import", &err);
        } else if (strcmp(task->state, "completed")) {
            fprintf(stderr, "upload_image: import failed: %s\n", task->status_message);
            rc = 1;
        }
        nubo_image_task_free(task);
    }
    if (rc == 0) {
        printf("%s available (sha256 %s, %llu bytes)\n", image->id, up.sha256,
               (unsigned long long)up.bytes);
    }
    nubo_image_free(image);
    nubo_client_free(client);
    return rc;
}

/* libnubo's resumable multipart upload (nubo_image_upload_parts()) against a canned server on
 * loopback: which requests it makes and in which order (the parts listed, the parts the API
 * lacks or holds wrong sent, each with its own signed SHA-256 and the file's bytes, then the
 * join with the whole file's SHA-256), its retries, its progress, and its errors. Needs no
 * gateway. Prints TAP. */
#include "nubo/nubo.h"

#include "canned_server.h"

#include <jansson.h>
#include <openssl/evp.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PART (64 * 1024)

static unsigned char file[3 * PART + 1000]; /* four parts: three whole, one of 1000 bytes */
static char path[64];

static void sha256_hex(const void *data, size_t n, char hex[65])
{
    unsigned char d[32];
    EVP_Digest(data, n, d, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    }
}

/* The progress reported: SEND calls must grow and end at the file's size. */
struct progress {
    uint64_t last_send;
    int sends, hashes;
    bool backwards;
};

static int on_progress(enum nubo_transfer_phase phase, uint64_t done, uint64_t total, void *arg)
{
    struct progress *p = arg;
    if (phase == NUBO_TRANSFER_HASH) {
        p->hashes++;
        return 0;
    }
    p->backwards |= done < p->last_send || total != sizeof file;
    p->last_send = done;
    p->sends++;
    return 0;
}

/* Request 'i' is a PUT of part 'part', with that part's bytes and SHA-256. */
static void part_put_is(int i, int part, const char *name)
{
    char want_target[128], hex[65];
    size_t off = (size_t)(part - 1) * PART;
    size_t len = sizeof file - off < PART ? sizeof file - off : PART;
    snprintf(want_target, sizeof want_target, "/api/v1/images/ami-1/file?part=%d", part);
    sha256_hex(file + off, len, hex);
    const struct canned_exchange *e = canned_request(i);
    char sha256[80];
    const char *got = canned_header(i, "x-amz-content-sha256", sha256, sizeof sha256);
    int good = !strcmp(e->method, "PUT") && !strcmp(e->target, want_target) && e->body_len == len &&
               e->body_in && !memcmp(e->body_in, file + off, len) && got && !strcmp(got, hex);
    canned_ok(good, name);
    if (!good) {
        printf("    # got %s %s, %zu bytes, sha256 %s\n", e->method, e->target, e->body_len,
               got ? got : "(none)");
    }
}

static void test_resume(struct nubo_client *c)
{
    char whole[65], p1[65], list[1024], complete[256];
    sha256_hex(file, sizeof file, whole);
    sha256_hex(file, PART, p1);
    /* Part 1 is there and right; 2 is there with other bytes; 3 has the right digest at the
     * wrong size; 4 is missing; 9 is left from another run. */
    snprintf(list, sizeof list,
             "{\"image_id\":\"ami-1\",\"parts\":[{\"part\":1,\"size_bytes\":%d,\"sha256\":\"%s\"},"
             "{\"part\":2,\"size_bytes\":%d,\"sha256\":\"%064d\"},"
             "{\"part\":3,\"size_bytes\":10,\"sha256\":\"%s\"},"
             "{\"part\":9,\"size_bytes\":5,\"sha256\":\"%064d\"}]}",
             PART, p1, PART, 0, p1, 0);
    canned_reset();
    canned_answer(200, list);
    canned_answer(200, "{\"image_id\":\"ami-1\",\"state\":\"part\",\"part\":2}");
    canned_answer(200, "{\"image_id\":\"ami-1\",\"state\":\"part\",\"part\":3}");
    canned_answer(200, "{\"image_id\":\"ami-1\",\"state\":\"part\",\"part\":4}");
    canned_answer(202, "{\"image_id\":\"ami-1\",\"state\":\"pending\",\"import_task_id\":"
                       "\"import-ami-1\"}");
    struct nubo_upload_parts_result r;
    struct nubo_error err;
    struct progress pr = {0};
    int rc = nubo_image_upload_parts(c, "ami-1", path, PART, on_progress, &pr, &r, &err);
    canned_ok(rc == 0 && canned_served() == 5, "resume: five requests");
    if (rc < 0) {
        printf("    # %s: %s\n", err.code, err.message);
    }
    canned_is_str(canned_request(0)->method, "GET", "resume: the parts listed first");
    canned_is_str(canned_request(0)->target, "/api/v1/images/ami-1/parts", "resume: GET .../parts");
    part_put_is(1, 2, "resume: part 2 (other bytes there) sent again");
    part_put_is(2, 3, "resume: part 3 (another size there) sent again");
    part_put_is(3, 4, "resume: part 4 (missing) sent, 1000 bytes");
    canned_is_str(canned_request(4)->method, "POST", "resume: then the join");
    canned_is_str(canned_request(4)->target, "/api/v1/images/ami-1/parts/complete",
                  "resume: POST .../complete");
    snprintf(complete, sizeof complete, "{\"parts\":[1,2,3,4],\"sha256\":\"%s\"}", whole);
    json_t *got = json_loads(canned_request(4)->body_in, 0, NULL),
           *want = json_loads(complete, 0, NULL);
    canned_ok(got && json_equal(got, want),
              "resume: the join names parts 1-4 and the file's SHA-256");
    json_decref(got);
    json_decref(want);
    canned_ok(r.parts == 4 && r.parts_skipped == 1 && r.parts_sent == 3 &&
                  r.bytes_skipped == PART && r.bytes_sent == 2 * PART + 1000 &&
                  r.bytes == sizeof file,
              "resume: the counts");
    canned_ok(!strcmp(r.state, "pending") && !strcmp(r.import_task_id, "import-ami-1") &&
                  !strcmp(r.sha256, whole) && !strcmp(r.image_id, "ami-1"),
              "resume: the join's answer");
    canned_ok(pr.hashes > 0 && pr.sends >= 4 && !pr.backwards && pr.last_send == sizeof file,
              "resume: progress of skipped plus sent bytes, up to the file's size");

    /* Everything there already: only the list and the join. */
    char p2[65], p3[65], p4[65];
    sha256_hex(file + PART, PART, p2);
    sha256_hex(file + 2 * PART, PART, p3);
    sha256_hex(file + 3 * PART, 1000, p4);
    snprintf(
        list, sizeof list,
        "{\"parts\":[{\"part\":1,\"size_bytes\":%d,\"sha256\":\"%s\"},{\"part\":2,"
        "\"size_bytes\":%d,\"sha256\":\"%s\"},{\"part\":3,\"size_bytes\":%d,\"sha256\":\"%s\"},"
        "{\"part\":4,\"size_bytes\":1000,\"sha256\":\"%s\"}]}",
        PART, p1, PART, p2, PART, p3, p4);
    canned_reset();
    canned_answer(200, list);
    canned_answer(200, "{\"image_id\":\"ami-1\",\"state\":\"available\"}");
    rc = nubo_image_upload_parts(c, "ami-1", path, PART, NULL, NULL, &r, &err);
    canned_ok(rc == 0 && canned_served() == 2 && !strcmp(canned_request(1)->method, "POST") &&
                  r.parts_sent == 0 && r.parts_skipped == 4 && !strcmp(r.state, "available"),
              "resume: all parts there, none sent");
}

static void test_errors(struct nubo_client *c)
{
    struct nubo_error err;
    struct nubo_upload_parts_result r;
    canned_reset();
    canned_ok(nubo_image_upload_parts(c, "ami-1", path, 1000, NULL, NULL, &r, &err) < 0 &&
                  canned_served() == 0 && !strcmp(err.code, "InvalidParameterValue"),
              "errors: a part size under the least, refused before sending");
    canned_ok(nubo_image_upload_parts(c, "ami-1", "/nonexistent/x", PART, NULL, NULL, &r, &err) <
                      0 &&
                  !strcmp(err.code, "FileError") && canned_served() == 0,
              "errors: a missing file");
    char empty[96];
    snprintf(empty, sizeof empty, "%s.empty", path);
    close(open(empty, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    canned_ok(nubo_image_upload_parts(c, "ami-1", empty, PART, NULL, NULL, &r, &err) < 0 &&
                  !strcmp(err.code, "InvalidParameterValue") && canned_served() == 0,
              "errors: an empty file");
    unlink(empty);
    /* The join refused: its error, and the join is not retried. */
    canned_reset();
    canned_answer(200, "{\"parts\":[]}");
    for (int i = 0; i < 4; i++) {
        canned_answer(200, "{\"state\":\"part\"}");
    }
    canned_answer(400, "{\"error\":{\"code\":\"BadDigest\",\"message\":\"the SHA-256 differs\"}}");
    canned_answer(200, "{\"state\":\"available\"}");
    canned_ok(nubo_image_upload_parts(c, "ami-1", path, PART, NULL, NULL, &r, &err) < 0 &&
                  !strcmp(err.code, "BadDigest") && err.http_status == 400 && canned_served() == 6,
              "errors: the join's BadDigest, asked once");
    /* A part answered 503 is sent again (retries on); one answered 400 is not. */
    canned_reset();
    canned_answer(200, "{\"parts\":[]}");
    canned_answer(503, "{\"error\":{\"code\":\"Unavailable\",\"message\":\"busy\"}}");
    for (int i = 0; i < 4; i++) {
        canned_answer(200, "{\"state\":\"part\"}");
    }
    canned_answer(200, "{\"state\":\"available\"}");
    int rc = nubo_image_upload_parts(c, "ami-1", path, PART, NULL, NULL, &r, &err);
    canned_ok(rc == 0 && canned_served() == 7 && r.parts_sent == 4, "errors: a part's 503 retried");
    canned_ok(!strcmp(canned_request(1)->target, canned_request(2)->target) &&
                  canned_request(1)->body_len == PART && canned_request(2)->body_len == PART &&
                  !memcmp(canned_request(2)->body_in, file, PART),
              "errors: the retry sends the same part again, whole");
    canned_reset();
    canned_answer(200, "{\"parts\":[]}");
    canned_answer(400, "{\"error\":{\"code\":\"ResourceLimitExceeded\",\"message\":\"quota\"}}");
    canned_answer(200, "{\"state\":\"part\"}");
    canned_ok(nubo_image_upload_parts(c, "ami-1", path, PART, NULL, NULL, &r, &err) < 0 &&
                  !strcmp(err.code, "ResourceLimitExceeded") && canned_served() == 2,
              "errors: a part refused with 400 stops the upload");
}

int main(void)
{
    char origin[64];
    struct nubo_client *c = canned_client(origin, sizeof origin);
    if (!c) {
        return 1;
    }
    for (size_t i = 0; i < sizeof file; i++) {
        file[i] = (unsigned char)(i * 7 + i / 251);
    }
    snprintf(path, sizeof path, "/tmp/test_sdk_upload.%d", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, file, sizeof file) != (ssize_t)sizeof file) {
        printf("Bail out! cannot write %s\n", path);
        return 1;
    }
    close(fd);
    nubo_client_set_retries(c, 3, 1);
    test_resume(c);
    test_errors(c);
    unlink(path);
    return canned_finish(c);
}

/* libFuzzer target for the OpenSSH public key parser (ssh_key_parse_public()), which reads what
 * users import. Beyond not crashing or leaking, an accepted key must round-trip: its derived line
 * parses again to the same blob, type and fingerprint. */
#include "ssh_key.h"

#include "nubo/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nb_error err = {0};
    struct ssh_key_pub key;
    if (ssh_key_parse_public(data, size, &key, &err) < 0) {
        if (err.code == NB_ERR_NONE ||
            (err.code == NB_ERR_INVALID && strcmp(err.reason, "InvalidKey.Format") != 0)) {
            abort(); /* a rejection must say why, with EC2's code */
        }
        return 0;
    }
    struct ssh_key_pub again;
    if (ssh_key_parse_public(key.line, strlen(key.line), &again, &err) < 0 ||
        again.type != key.type || again.bits != key.bits || again.blob_len != key.blob_len ||
        memcmp(again.blob, key.blob, key.blob_len) != 0 ||
        strcmp(again.fingerprint, key.fingerprint) != 0 || strcmp(again.line, key.line) != 0) {
        abort();
    }
    ssh_key_pub_clear(&again);
    ssh_key_pub_clear(&key);
    return 0;
}

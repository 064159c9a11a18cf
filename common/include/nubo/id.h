/* Resource ids in EC2's form: a prefix, a dash, 17 lower-case hex digits ("i-0a1b2c3d4e5f60718"),
 * random from the operating system (getrandom(2)). Also request ids (UUID v4 text). */
#ifndef NUBO_ID_H
#define NUBO_ID_H

#include <stdbool.h>
#include <stddef.h>

#define NB_ID_HEX_DIGITS 17
#define NB_ID_MAX        32 /* room for the longest prefix, the dash, 17 digits and NUL */

/* Writes "<prefix>-<17 hex>" into 'out' ('size' at least strlen(prefix) + 19).
 * Returns 0, or -1 if 'out' is too small or the OS gave no randomness. */
int nb_id_new(const char *prefix, char *out, size_t size);

/* True if 'id' is "<prefix>-" followed by exactly 17 lower-case hex digits. */
bool nb_id_valid(const char *prefix, const char *id);

/* Writes a random UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", 36 chars + NUL) into 'out'
 * (at least 37 bytes). Returns 0 or -1. */
int nb_uuid_new(char *out, size_t size);

/* Fills 'buf' with 'len' random bytes from the OS. Returns 0 or -1. */
int nb_random_bytes(void *buf, size_t len);

#endif

/* Arenas: request-scoped memory freed in one place (nginx pools, PostgreSQL memory contexts).
 *
 * Allocations are 16-byte aligned and live until nb_arena_free() or nb_arena_reset().
 * An arena is not thread-safe; a request owns its arena. */
#ifndef NUBO_ARENA_H
#define NUBO_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct nb_arena;

/* Returns a new arena whose first block holds 'first_block' bytes (0 for a default of 8 KiB).
 * Aborts when out of memory, as every allocation below does. */
struct nb_arena *nb_arena_new(size_t first_block);

/* Registers 'fn'('arg') to run when the arena is freed or reset, after the cleanups registered
 * later (last in, first out): a request can then hand out pointers into an object it owns, such
 * as a PostgreSQL result, until the request ends. */
void nb_arena_on_free(struct nb_arena *a, void (*fn)(void *), void *arg);

/* Runs the cleanups, then frees the arena and everything allocated from it. Accepts NULL. */
void nb_arena_free(struct nb_arena *a);

/* Forgets all allocations but keeps the first block for reuse. */
void nb_arena_reset(struct nb_arena *a);

void *nb_arena_alloc(struct nb_arena *a, size_t size);
void *nb_arena_zalloc(struct nb_arena *a, size_t size);
char *nb_arena_strdup(struct nb_arena *a, const char *s);
char *nb_arena_strndup(struct nb_arena *a, const char *s, size_t n);
char *nb_arena_printf(struct nb_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *nb_arena_vprintf(struct nb_arena *a, const char *fmt, va_list ap);

#endif

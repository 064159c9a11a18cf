/* Arenas: a chain of blocks; allocation bumps a pointer, freeing is all at once (see arena.h). */
#include "nubo/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN         16
#define ARENA_DEFAULT_BLOCK 8192

struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena_cleanup {
    struct arena_cleanup *next; /* registered earlier */
    void (*fn)(void *);
    void *arg;
};

struct nb_arena {
    struct arena_block *head;       /* the block allocations come from; others hang off ->next */
    struct arena_block *first;      /* kept across nb_arena_reset() */
    struct arena_cleanup *cleanups; /* newest first; allocated in the arena itself */
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("nubo: out of memory\n", stderr);
        abort();
    }
    return p;
}

static struct arena_block *block_new(size_t size)
{
    struct arena_block *b = xmalloc(sizeof *b + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct nb_arena *nb_arena_new(size_t first_block)
{
    struct nb_arena *a = xmalloc(sizeof *a);
    a->first = block_new(first_block ? first_block : ARENA_DEFAULT_BLOCK);
    a->head = a->first;
    a->cleanups = NULL;
    return a;
}

static void free_chain(struct arena_block *b, const struct arena_block *stop)
{
    while (b && b != stop) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
}

static void run_cleanups(struct nb_arena *a)
{
    for (struct arena_cleanup *c = a->cleanups; c; c = c->next) {
        c->fn(c->arg);
    }
    a->cleanups = NULL;
}

void nb_arena_on_free(struct nb_arena *a, void (*fn)(void *), void *arg)
{
    struct arena_cleanup *c = nb_arena_alloc(a, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
}

void nb_arena_free(struct nb_arena *a)
{
    if (!a) {
        return;
    }
    run_cleanups(a);
    free_chain(a->head, NULL);
    free(a);
}

void nb_arena_reset(struct nb_arena *a)
{
    run_cleanups(a);
    /* Newer blocks sit in front of 'first' in the chain. */
    free_chain(a->head, a->first);
    a->first->next = NULL;
    a->first->used = 0;
    a->head = a->first;
}

void *nb_arena_alloc(struct nb_arena *a, size_t size)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < size) {
        abort(); /* overflow: a caller passed a absurd size */
    }
    struct arena_block *b = a->head;
    if (b->size - b->used < need) {
        size_t bsize = b->size * 2;
        if (bsize < need) {
            bsize = need;
        }
        struct arena_block *nb = block_new(bsize);
        nb->next = b;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void *nb_arena_zalloc(struct nb_arena *a, size_t size)
{
    void *p = nb_arena_alloc(a, size);
    memset(p, 0, size);
    return p;
}

char *nb_arena_strndup(struct nb_arena *a, const char *s, size_t n)
{
    char *p = nb_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *nb_arena_strdup(struct nb_arena *a, const char *s)
{
    return nb_arena_strndup(a, s, strlen(s));
}

char *nb_arena_vprintf(struct nb_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return nb_arena_strdup(a, "");
    }
    char *p = nb_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *nb_arena_printf(struct nb_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = nb_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

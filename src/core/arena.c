/**
 * @file arena.c
 * @brief The parameter registry/arena and the activation bump allocator.
 */
#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

void ts_params_init(ts_params *p) { memset(p, 0, sizeof *p); }

/* FNV-1a of a name, for the registry's hash index. */
static unsigned long long name_hash(const char *name) {
    unsigned long long h = 0xcbf29ce484222325ULL;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) h = (h ^ *c) * 0x100000001b3ULL;
    return h;
}

/* Rebuild the index with @p cap slots (a power of two > count). */
static int index_rebuild(ts_params *p, int cap) {
    int *slots = malloc((size_t)cap * sizeof *slots);
    if (!slots) return -1;
    for (int i = 0; i < cap; i++) slots[i] = -1;
    for (int i = 0; i < p->count; i++) {
        size_t k = (size_t)(name_hash(p->params[i].name) & (unsigned long long)(cap - 1));
        while (slots[k] >= 0) k = (k + 1) & (size_t)(cap - 1);
        slots[k] = i;
    }
    free(p->index);
    p->index = slots;
    p->index_cap = cap;
    return 0;
}

int ts_params_add(ts_params *p, const char *name, int ndim, const int *shape, int no_decay) {
    if (p->data) {
        ts_fail(TS_ERR_ARG, "parameter '%s' registered after the arena was allocated", name);
        return -1;
    }
    if (ndim < 1 || ndim > TS_MAX_DIMS || strlen(name) >= TS_NAME_MAX) {
        ts_fail(TS_ERR_ARG, "parameter '%s': bad rank %d or name too long", name, ndim);
        return -1;
    }
    if (ts_params_find(p, name) >= 0) {
        ts_fail(TS_ERR_ARG, "parameter '%s' registered twice", name);
        return -1;
    }
    /* Sizes in 64 bits: a parameter, its gradient and two moments, 4 bytes each. */
    unsigned long long numel = 1, limit = TS_MAX_ALLOC_BYTES / 16;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            ts_fail(TS_ERR_ARG, "parameter '%s': dimension %d is %d", name, i, shape[i]);
            return -1;
        }
        numel *= (unsigned long long)shape[i]; /* < 2^31 · limit: cannot wrap */
        if (numel > limit) break;
    }
    unsigned long long start = ((unsigned long long)p->numel + 15) & ~15ULL;
    if (numel > limit || start + numel > limit || p->count >= (1 << 28)) {
        ts_fail(TS_ERR_RANGE,
                "parameter '%s': the model would need more than %llu TiB for its parameters, gradients and moments "
                "(more than could ever be allocated)",
                name, TS_MAX_ALLOC_BYTES >> 40);
        return -1;
    }
    if (p->count == p->capacity) {
        int cap = p->capacity ? 2 * p->capacity : 32;
        ts_param *grown = realloc(p->params, (size_t)cap * sizeof *grown);
        if (!grown) {
            ts_fail(TS_ERR_NOMEM, "out of memory registering parameter '%s'", name);
            return -1;
        }
        p->params = grown;
        p->capacity = cap;
    }
    if (2 * (p->count + 1) > p->index_cap && index_rebuild(p, p->index_cap ? 2 * p->index_cap : 64) != 0) {
        ts_fail(TS_ERR_NOMEM, "out of memory registering parameter '%s'", name);
        return -1;
    }
    ts_param *t = &p->params[p->count];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->ndim = ndim;
    t->numel = (size_t)numel;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    /* Keep every tensor 16-float (64-byte) aligned for vector loads. */
    t->offset = (size_t)start;
    t->no_decay = no_decay;
    p->numel = t->offset + t->numel;
    size_t k = (size_t)(name_hash(name) & (unsigned long long)(p->index_cap - 1));
    while (p->index[k] >= 0) k = (k + 1) & (size_t)(p->index_cap - 1);
    p->index[k] = p->count;
    return p->count++;
}

ts_status ts_params_alloc(ts_params *p, int with_moments) {
    p->data = ts_calloc(p->numel, sizeof(float), "parameters");
    p->grad = ts_calloc(p->numel, sizeof(float), "gradients");
    if (!p->data || !p->grad) return TS_ERR_NOMEM;
    if (with_moments) {
        p->m = ts_calloc(p->numel, sizeof(float), "AdamW first moment");
        p->v = ts_calloc(p->numel, sizeof(float), "AdamW second moment");
        if (!p->m || !p->v) return TS_ERR_NOMEM;
    }
    return TS_OK;
}

ts_status ts_params_alloc_frozen(ts_params *p) {
    p->data = ts_calloc(p->numel, sizeof(float), "parameters");
    return p->data ? TS_OK : TS_ERR_NOMEM;
}

size_t ts_params_bytes(const ts_params *p) {
    size_t buffers = (p->data != NULL) + (p->grad != NULL) + (p->m != NULL) + (p->v != NULL);
    return buffers * p->numel * sizeof(float);
}

int ts_params_find(const ts_params *p, const char *name) {
    if (!p->index) { /* a list built by hand, without the hash index (e.g. a subset of a model's tensors) */
        for (int i = 0; i < p->count; i++)
            if (strcmp(p->params[i].name, name) == 0) return i;
        return -1;
    }
    size_t k = (size_t)(name_hash(name) & (unsigned long long)(p->index_cap - 1));
    for (; p->index[k] >= 0; k = (k + 1) & (size_t)(p->index_cap - 1))
        if (strcmp(p->params[p->index[k]].name, name) == 0) return p->index[k];
    return -1;
}

ts_view ts_params_view(const ts_params *p, int idx, float *base) {
    ts_view v;
    memset(&v, 0, sizeof v);
    const ts_param *t = &p->params[idx];
    v.name = t->name;
    v.data = base + t->offset;
    v.ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) v.shape[i] = t->shape[i];
    return v;
}

void ts_params_zero_grad(ts_params *p) {
    if (p->grad) memset(p->grad, 0, p->numel * sizeof(float));
}

void ts_params_free(ts_params *p) {
    free(p->params);
    free(p->data);
    free(p->grad);
    free(p->m);
    free(p->v);
    free(p->index);
    memset(p, 0, sizeof *p);
}

static void *arena_take(ts_arena *a, size_t bytes) {
    size_t start = (a->used + 63) & ~(size_t)63;
    if (!a->base) {
        a->used = start + bytes;
        return NULL;
    }
    if (start + bytes > a->size) {
        ts_fail(TS_ERR_NOMEM, "activation arena exhausted: need %zu bytes, have %zu", start + bytes, a->size);
        return NULL;
    }
    a->used = start + bytes;
    return a->base + start;
}

float *ts_arena_floats(ts_arena *a, size_t count) { return arena_take(a, count * sizeof(float)); }

int *ts_arena_ints(ts_arena *a, size_t count) { return arena_take(a, count * sizeof(int)); }

ts_status ts_arena_create(ts_arena *a, size_t bytes) {
    a->used = 0;
    a->size = bytes;
    a->base = NULL;
    if (posix_memalign((void **)&a->base, 64, bytes ? bytes : 64) != 0) {
        a->base = NULL;
        return ts_fail(TS_ERR_NOMEM, "out of memory allocating a %zu-byte activation arena", bytes);
    }
    memset(a->base, 0, bytes);
    return TS_OK;
}

void ts_arena_reset(ts_arena *a) { a->used = 0; }

void ts_arena_free(ts_arena *a) {
    free(a->base);
    memset(a, 0, sizeof *a);
}

/**
 * @file arena.h
 * @brief One contiguous buffer for all parameters (plus mirrors for gradients
 *        and AdamW moments), and a bump allocator for activations.
 *
 * Parameters are *registered* by name and shape first, then allocated in one
 * go. Registration order is layout order, and it is the single list every
 * consumer walks: the optimizer, the gradient checker, the checkpoint writer.
 * So no tensor can be skipped or counted twice.
 *
 *     data : [ embed | layer0.wq | layer0.wk | ... | norm | lm_head ]
 *     grad : [ same offsets ]
 *     m, v : [ same offsets ]   (AdamW first and second moments)
 */
#ifndef TS_ARENA_H
#define TS_ARENA_H

#include <stddef.h>

#include "common.h"

/** Maximum number of dimensions of a parameter tensor. */
#define TS_MAX_DIMS 4
/** Maximum length of a parameter name, including the terminating zero. */
#define TS_NAME_MAX 96

/**
 * Bytes no allocation can ever reach: 2^47 = 128 TiB, the user address space
 * of x86-64 (and of AArch64 with 48-bit addresses). Sizes read from a file
 * are checked against it, in 64-bit arithmetic, before anything is allocated.
 */
#define TS_MAX_ALLOC_BYTES ((unsigned long long)1 << 47)

/** One named parameter tensor: a view into the arena. */
typedef struct {
    char name[TS_NAME_MAX]; /**< Hugging Face style name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    size_t offset;          /**< offset in floats from the start of the arena */
    size_t numel;           /**< number of elements */
    int ndim;               /**< number of dimensions */
    int shape[TS_MAX_DIMS]; /**< shape, outermost first; weights are (out, in) */
    int no_decay;           /**< 1 for tensors AdamW must not decay (norm weights, biases) */
} ts_param;

/** All parameters of a model, in one buffer, with gradient and moment mirrors. */
typedef struct {
    ts_param *params; /**< registered tensors, in layout order */
    int count;        /**< number of registered tensors */
    int capacity;     /**< allocated length of @ref params */
    size_t numel;     /**< total number of floats */
    float *data;      /**< parameter values (numel floats) */
    float *grad;      /**< gradients, same offsets (NULL until allocated, and in a frozen model) */
    float *m;         /**< AdamW first moment (NULL unless requested) */
    float *v;         /**< AdamW second moment (NULL unless requested) */
    int *index;       /**< name hash table: index_cap slots holding a tensor index or -1 */
    int index_cap;    /**< slots in @ref index (a power of two, at least twice @ref count) */
} ts_params;

/**
 * A shaped view of floats: what a debugger pretty-printer shows as a matrix
 * (scripts/gdb/), and what functions that look inside a model hand out.
 */
typedef struct {
    const char *name;       /**< tensor name (may be NULL) */
    float *data;            /**< first element */
    int ndim;               /**< number of dimensions */
    int shape[TS_MAX_DIMS]; /**< shape, outermost first, row-major */
} ts_view;

/** @brief View of tensor @p idx in @p base (p->data, p->grad, p->m or p->v). */
ts_view ts_params_view(const ts_params *p, int idx, float *base);

/** @brief Start an empty registry. */
void ts_params_init(ts_params *p);

/**
 * @brief Register a tensor; returns its index, or -1 (with ts_last_error set).
 * Must be called before ts_params_alloc(). A name hash keeps registration
 * linear in the number of tensors; the running total is checked against
 * TS_MAX_ALLOC_BYTES (parameters, gradients and two moments) as it grows.
 */
int ts_params_add(ts_params *p, const char *name, int ndim, const int *shape, int no_decay);

/**
 * @brief Allocate data and grad (zeroed) and, if @p with_moments, the AdamW moments.
 */
ts_status ts_params_alloc(ts_params *p, int with_moments);

/** @brief Allocate data only (zeroed): a frozen model's weights; grad, m and v stay NULL. */
ts_status ts_params_alloc_frozen(ts_params *p);

/** @brief Bytes the buffers hold: data, plus grad and the moments where allocated. */
size_t ts_params_bytes(const ts_params *p);

/** @brief Index of the tensor called @p name, or -1 (a hash lookup). */
int ts_params_find(const ts_params *p, const char *name);

/** @brief Set every gradient to zero. */
void ts_params_zero_grad(ts_params *p);

/** @brief Free all buffers and the registry. */
void ts_params_free(ts_params *p);

/** A bump allocator for activations; with base == NULL it only measures. */
typedef struct {
    char *base;   /**< start of the buffer, or NULL in measuring mode */
    size_t size;  /**< capacity in bytes */
    size_t used;  /**< bytes handed out so far (also the measurement) */
} ts_arena;

/**
 * @brief Take @p count floats from the arena, 64-byte aligned.
 * In measuring mode (base == NULL) returns NULL and only advances @ref ts_arena::used.
 * Returns NULL (and sets the error) if a real arena is exhausted.
 */
float *ts_arena_floats(ts_arena *a, size_t count);

/** @brief Same as ts_arena_floats() for ints. */
int *ts_arena_ints(ts_arena *a, size_t count);

/** @brief Allocate a real arena of @p bytes (e.g. the size a measuring pass reported). */
ts_status ts_arena_create(ts_arena *a, size_t bytes);

/** @brief Hand everything back (keeps the buffer). */
void ts_arena_reset(ts_arena *a);

/** @brief Free the buffer. */
void ts_arena_free(ts_arena *a);

#endif

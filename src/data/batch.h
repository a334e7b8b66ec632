/**
 * @file batch.h
 * @brief Training batches, and the sources that hand the training loop one per step.
 *
 * A batch is B rows of T positions:
 *
 * | field     | shape | holds                                                          |
 * |-----------|-------|----------------------------------------------------------------|
 * | tokens    | (B,T) | the ids the model reads                                        |
 * | targets   | (B,T) | the id each position should predict; TS_IGNORE = no loss there |
 * |           |       | (an SFT prompt, padding after a short sequence)                |
 * | weights   | (B,T) | optional per-token loss weights (GRPO's per-token coefficients,|
 * |           |       | a distillation mix), NULL when every counted token weighs 1    |
 *
 * Pretraining's windows of a token stream fill tokens and targets; an SFT
 * source renders (prompt, response) pairs with a chat template and masks the
 * prompt with TS_IGNORE; a GRPO source puts its advantages in weights. The
 * loss a trainer hands the loop decides what the fields mean; data knows no model.
 *
 * A source keeps everything that changes from one batch to the next in its
 * @ref ts_batch_state (a cursor and RNG streams), so the training loop can save
 * it beside the checkpoint and a resumed run draws the very same batches.
 */
#ifndef TS_BATCH_H
#define TS_BATCH_H

#include <stddef.h>

#include "core/common.h"
#include "core/rng.h"

/** Most RNG streams a batch source keeps (the training state stores as many). */
#define TS_BATCH_MAX_RNG 4

/** One step's batch. The buffers hold cap_B·cap_T entries; a source may hand out a smaller B or T. */
typedef struct {
    int B;          /**< rows in this batch */
    int T;          /**< positions per row in this batch */
    int *tokens;    /**< (B,T) input ids */
    int *targets;   /**< (B,T) next-token targets, TS_IGNORE = not counted */
    float *weights; /**< (B,T) per-token loss weights, or NULL (all 1) */
    int cap_B;      /**< rows allocated */
    int cap_T;      /**< positions per row allocated */
} ts_batch;

/** @brief Allocate a batch of up to B×T (with a weights buffer when @p with_weights); B, T start at the capacity. */
ts_status ts_batch_alloc(ts_batch *b, int B, int T, int with_weights);

/** @brief Free a batch's buffers (safe on a zeroed or already freed batch). */
void ts_batch_free(ts_batch *b);

/** Everything about a source that changes between batches: saved with the training state. */
typedef struct {
    long pos;                      /**< a cursor (e.g. examples consumed), >= 0; unused by random windows */
    int n_rng;                     /**< RNG streams in use (0..TS_BATCH_MAX_RNG) */
    ts_rng rng[TS_BATCH_MAX_RNG];  /**< e.g. rng[0] = the data-order stream */
} ts_batch_state;

/** Hands out training batches; see ts_windows_source() for pretraining's. */
typedef struct ts_batch_source {
    /** Fill @p out with the next batch, advancing src->state (and nothing else). */
    ts_status (*next)(struct ts_batch_source *src, ts_batch *out);
    void *ctx;             /**< the source's data, read-only between batches */
    int B;                 /**< the largest batch it hands out: rows */
    int T;                 /**< ...and positions per row (the loop sizes buffers and activations from these) */
    int with_weights;      /**< 1 if it fills ts_batch::weights */
    ts_batch_state state;  /**< position in the data: restored on resume */
} ts_batch_source;

/** A stream of token ids (documents already joined). */
typedef struct {
    const int *tokens; /**< ids */
    size_t n;          /**< number of tokens */
} ts_token_stream;

/**
 * @brief Rows b = 0..B-1 of (tokens, targets) from the windows of T+1 tokens
 *        of @p s starting at starts[b]: tokens = window[0..T-1], targets = window[1..T].
 */
void ts_windows_fill(const ts_token_stream *s, const size_t *starts, int B, int T, int *tokens, int *targets);

/**
 * @brief Pretraining's source: each batch is B windows of T+1 tokens at
 *        uniformly random starts in @p s, drawn from one RNG stream
 *        (rng[0], seeded from @p seed on TS_STREAM_DATA).
 * @param src    the source to set up; src->ctx points at @p s, which must outlive it
 * @param s      the training stream (at least T+2 tokens)
 * @param B      rows per batch
 * @param T      positions per row
 * @param seed   data-order seed
 */
ts_status ts_windows_source(ts_batch_source *src, const ts_token_stream *s, int B, int T, uint64_t seed);

#endif

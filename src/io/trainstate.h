/**
 * @file trainstate.h
 * @brief Training state beside a checkpoint, so a stopped run resumes exactly.
 *
 * A checkpoint folder holds the model (config.json + model.safetensors) and,
 * while a run is unfinished, `training_state.safetensors`: everything else a
 * resumed run needs to take the very same steps an uninterrupted run would.
 * It is an ordinary safetensors file (any safetensors tool can inspect it):
 *
 * | tensor / metadata key | holds                                                        |
 * |-----------------------|--------------------------------------------------------------|
 * | `m.<param name>`      | AdamW first moment of that parameter, F32, the param's shape |
 * | `v.<param name>`      | AdamW second moment, likewise                                |
 * | `format`              | "tinyseek-training-state"                                    |
 * | `version`             | "1"                                                          |
 * | `step`                | optimizer steps completed (decimal)                          |
 * | `data_pos`            | the data cursor (decimal; its meaning is the loop's)         |
 * | `fingerprint`         | the run-config fingerprint (decimal u64)                     |
 * | `weights_hash`        | ts_fingerprint() of the weights saved beside it (decimal u64;|
 * |                       | optional: absent in states written before it existed)        |
 * | `rng_streams`         | how many RNG states follow (decimal, 0..4)                   |
 * | `rng.K`               | state K as its four u64 words in decimal, comma-separated    |
 *
 * Moments are stored in F32 and read back only from F32, so they come back
 * bit-identical; RNG words are decimal strings because JSON numbers are
 * doubles and would round a 64-bit word.
 */
#ifndef TS_TRAINSTATE_H
#define TS_TRAINSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/common.h"
#include "core/rng.h"

/** File name the training loop uses inside a checkpoint folder. */
#define TS_TRAINSTATE_FILE "training_state.safetensors"

/** Most RNG streams one training state can carry. */
#define TS_TRAINSTATE_MAX_RNG 4

/** The scalar part of a training state (the moments live in ts_params::m and ts_params::v). */
typedef struct {
    long step;                          /**< optimizer steps completed; the next step is step + 1 */
    long data_pos;                      /**< data cursor (e.g. batches or tokens consumed), >= 0 */
    uint64_t fingerprint;               /**< ts_fingerprint() of the run config; 0 = none */
    uint64_t weights_hash;              /**< ts_fingerprint() of the model's weights saved with it; 0 = not recorded */
    int n_rng;                          /**< RNG states stored in @ref rng (0..TS_TRAINSTATE_MAX_RNG) */
    ts_rng rng[TS_TRAINSTATE_MAX_RNG];  /**< e.g. rng[0] = the data-order stream */
} ts_trainstate_meta;

/**
 * @brief 64-bit FNV-1a hash of @p len bytes, for a run-config fingerprint.
 * Chain calls by passing the previous result as @p h (start with 0).
 */
uint64_t ts_fingerprint(uint64_t h, const void *data, size_t len);

/**
 * @brief Write the AdamW moments of @p p (p->m, p->v) and @p meta to @p path, atomically.
 * @return TS_ERR_ARG if the moments are not allocated or @p meta is out of range.
 */
ts_status ts_trainstate_save(const char *path, const ts_params *p, const ts_trainstate_meta *meta);

/**
 * @brief Read a training state written by ts_trainstate_save() into p->m, p->v and @p meta.
 *
 * Every registered tensor must have both moments, F32, with its exact shape;
 * tensors the registry does not have, and missing or malformed metadata, are
 * errors naming the file and the tensor or key. If @p expected_fingerprint is
 * not 0 it must equal the stored fingerprint (the run config changed
 * otherwise). Everything is checked before anything is copied: on failure
 * p->m, p->v and @p meta are unchanged.
 */
ts_status ts_trainstate_load(const char *path, ts_params *p, ts_trainstate_meta *meta, uint64_t expected_fingerprint);

#endif

/**
 * @file checkpoint.h
 * @brief A checkpoint is a Hugging Face model folder:
 *        config.json + model.safetensors (+ tokenizer.json).
 */
#ifndef TS_CHECKPOINT_H
#define TS_CHECKPOINT_H

#include "model/model.h"

/**
 * @brief Write @p dir/config.json and @p dir/model.safetensors (each atomically),
 * creating the folder if needed, and copy @p tokenizer_json (if non-NULL) to
 * @p dir/tokenizer.json.
 */
ts_status ts_checkpoint_save(const ts_model *m, const char *dir, const char *tokenizer_json);

/**
 * @brief Create @p m from @p dir/config.json and load @p dir/model.safetensors
 * into it. The file's header is checked against the config: every tensor
 * present with the right shape, nothing extra, dtype F32/F16/BF16, every
 * value finite. On failure @p m is left empty (all zero, nothing allocated).
 */
ts_status ts_checkpoint_load(ts_model *m, const char *dir, int with_optimizer);

#endif

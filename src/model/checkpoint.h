/**
 * @file checkpoint.h
 * @brief A checkpoint is a Hugging Face model folder:
 *        config.json + model.safetensors (+ tokenizer.json).
 */
#ifndef TS_CHECKPOINT_H
#define TS_CHECKPOINT_H

#include "model/model.h"

/** The files a checkpoint folder's save owns (config, weights, tokenizer, training state), NULL-terminated. */
extern const char *const ts_checkpoint_files[];

/**
 * @brief Save @p dir as a unit (see io/savedir.h): config.json,
 * model.safetensors and, if @p tokenizer_json is non-NULL, a copy of it as
 * tokenizer.json with tokenizer_config.json beside it (special tokens and the
 * chat templates of data/chat.h as Jinja `chat_template`s), written into a fresh folder that then replaces @p dir in
 * one step (created if needed). Other files in @p dir are kept.
 */
ts_status ts_checkpoint_save(const ts_model *m, const char *dir, const char *tokenizer_json);

/**
 * @brief Write config.json, model.safetensors and tokenizer.json +
 * tokenizer_config.json (if @p tokenizer_json is non-NULL) into @p dir, each atomically, one after
 * another: the building block of a save that adds more files to the unit
 * (the training loop adds its training state; see ts_savedir_begin()).
 */
ts_status ts_checkpoint_write(const ts_model *m, const char *dir, const char *tokenizer_json);

/**
 * @brief Create @p m from @p dir/config.json, allocated as @p mode says
 * (TS_MODEL_FROZEN: weights only, for generation, evaluation, a teacher or a
 * reference model), and load @p dir/model.safetensors into it. The file's
 * header is checked against the config: every tensor present with the right
 * shape, nothing extra, dtype F32/F16/BF16, every value finite. The one
 * exception: a router whose method does not use the selection bias
 * (moe_bias_required()) may come without it, as DeepSeek-V2's do; it is then 0.
 * On failure @p m is left empty (all zero, nothing allocated).
 */
ts_status ts_checkpoint_load(ts_model *m, const char *dir, ts_model_mode mode);

/**
 * @brief ts_checkpoint_load() without the multi-token prediction modules
 * (chapter 6): a checkpoint whose config has num_nextn_predict_layers = D > 0
 * is loaded and checked whole, then @p m becomes the main model alone (D = 0,
 * the same weights) and *@p dropped = D (0 when there was nothing to drop;
 * @p dropped may be NULL). Generation and evaluation use this: the modules
 * only serve training and speculative decoding.
 */
ts_status ts_checkpoint_load_main(ts_model *m, const char *dir, ts_model_mode mode, int *dropped);

/**
 * @brief Build @p dst, a model with @p kv_heads key/value heads, from @p src (a
 * llama-type model, MHA or GQA) by mean-pooling its k_proj and v_proj heads in
 * groups (gqa_mean_pool_heads(), chapter 3); every other tensor is copied.
 * @p kv_heads must divide src's num_key_value_heads. @p dst is created here
 * (without optimizer state); free it with ts_model_free(). On error returns
 * non-zero with ts_last_error() set.
 */
ts_status ts_model_convert_gqa(ts_model *dst, const ts_model *src, int kv_heads);

#endif

/**
 * @file pretrain.h
 * @brief The pretraining loop: random windows of a token stream, AdamW with
 *        warmup + cosine schedule and gradient clipping, periodic held-out
 *        evaluation, a CSV row per step, checkpoints, exact resume.
 */
#ifndef TS_PRETRAIN_H
#define TS_PRETRAIN_H

#include "core/optim.h"
#include "model/model.h"

/** A stream of token ids (documents already joined). */
typedef struct {
    const int *tokens; /**< ids, all < vocab_size */
    size_t n;          /**< number of tokens */
} ts_token_stream;

/** Everything the loop needs to know; see ts_train_opts_default(). */
typedef struct {
    int batch_size;          /**< B sequences per step */
    int seq_len;             /**< T tokens per sequence */
    long steps;              /**< total optimizer steps */
    long warmup;             /**< linear warmup steps */
    float lr;                /**< peak learning rate */
    float min_lr;            /**< final learning rate of the cosine */
    float grad_clip;         /**< global norm clip (0 = off) */
    ts_adamw adamw;          /**< AdamW hyper-parameters */
    long eval_every;         /**< held-out evaluation period in steps (0 = only at the end) */
    int eval_batches;        /**< batches per evaluation */
    long save_every;         /**< checkpoint period in steps (0 = only at the end) */
    const char *out_dir;     /**< checkpoint folder (NULL = do not save) */
    const char *tokenizer_json; /**< copied into the checkpoint folder (may be NULL) */
    const char *metrics_path;   /**< CSV file, one row per step (NULL = none) */
    uint64_t seed;           /**< seeds the data order (TS_STREAM_DATA) */
    int resume;              /**< continue from out_dir's checkpoint and training state */
    long stop_after;         /**< stop (saving state) after this step, as if interrupted (0 = run to the end) */
    int quiet;               /**< no progress line */
    float bias_update_speed; /**< γ of DeepSeek-V3's auxiliary-loss-free balancing: after each step every MoE
                                  layer's selection bias moves by γ toward balance (0 = off; chapter 5) */
    const char *expert_load_path; /**< CSV of each MoE layer's per-expert load, one row per step (NULL = none) */
} ts_train_opts;

/** What a run reached. */
typedef struct {
    float final_loss;     /**< training loss of the last step */
    float final_val_loss; /**< held-out loss at the end */
    double seconds;       /**< wall time of the steps run */
    double tokens_per_s;  /**< training throughput */
    long steps_run;       /**< steps run by this call (fewer than steps after a resume) */
} ts_train_result;

/** @brief Defaults sized for the chapter-2 model on a 2-core laptop. */
ts_train_opts ts_train_opts_default(void);

/**
 * @brief Held-out loss: mean over @p n_batches fixed, evenly spaced windows of @p eval.
 * Deterministic: the same windows every call.
 */
float ts_eval_loss(ts_model *m, const ts_token_stream *eval, int B, int T, int n_batches);

/**
 * @brief Train @p m (created with the optimizer moments) on @p train.
 * With opts->resume the weights, moments, step and data order come from
 * opts->out_dir and the run continues exactly where it stopped.
 */
ts_status ts_pretrain(ts_model *m, const ts_token_stream *train, const ts_token_stream *eval,
                      const ts_train_opts *opts, ts_train_result *result);

/** @brief Cross-entropy (nats) of always predicting the training stream's unigram frequencies. */
double ts_unigram_entropy(const ts_token_stream *s, int vocab_size);

#endif

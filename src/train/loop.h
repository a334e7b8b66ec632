/**
 * @file loop.h
 * @brief The one training loop every trainer shares (pretraining now; SFT,
 *        GRPO and distillation later): step, warmup + cosine schedule,
 *        gradient clipping, AdamW, the metrics CSV, the progress line,
 *        held-out evaluation, checkpoints saved as a unit, exact resume, the
 *        MoE bias update and expert-load log (chapter 5), and a stop on a
 *        non-finite loss or gradient.
 *
 * A trainer hands it a batch source (src/data/batch.h: where batches come
 * from) and a loss (what a batch costs and its gradient):
 *
 *     for step in start..end:
 *         batch = data->next()                       // src/data
 *         zero gradients
 *         loss.step(model, batch)                    // forward + loss + backward: grads += dL/dθ,
 *                                                    // linear layers in opts.precision (appendix B)
 *         after_backward(model)                      // appendix C: sum the gradients over ranks
 *         norm = clip(grads); stop if loss or norm is not finite
 *         AdamW(lr(step)); stop if a weight is not finite
 *         MoE bias update; expert-load row
 *         eval (every eval_every), metrics row, progress line, save (every save_every)
 *
 * A checkpoint folder (opts.out_dir) holds config.json, model.safetensors,
 * tokenizer.json and training_state.safetensors (AdamW moments, step, the
 * batch source's state, the run fingerprint, a hash of the weights saved
 * with it); each save replaces the four together (io/savedir.h), so a run
 * killed at any moment resumes bit for bit from the last complete save.
 */
#ifndef TS_LOOP_H
#define TS_LOOP_H

#include "core/linear.h"
#include "core/optim.h"
#include "data/batch.h"
#include "model/model.h"

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
    float mtp_lambda;        /**< λ of the multi-token prediction loss L_main + (λ/D)·Σ_k L_k, for models with
                                  num_nextn_predict_layers = D > 0 (chapter 6; DeepSeek-V3 used 0.3, then 0.1) */
    ts_precision precision;  /**< what the blocks' linear layers compute in during a step (zeros = float32;
                                  appendix B: ts_precision_fp8()); held-out evaluation stays float32 */
} ts_train_opts;

/** What a run reached. */
typedef struct {
    float final_loss;     /**< training loss of the last step */
    float final_val_loss; /**< held-out loss at the end */
    double seconds;       /**< wall time of the steps run */
    double tokens_per_s;  /**< training throughput */
    long steps_run;       /**< steps run by this call (fewer than steps after a resume) */
    long diverged_step;   /**< the step whose loss or gradient norm was not finite (the run stopped there), or 0 */
} ts_train_result;

/** @brief Defaults sized for the chapter-2 model on a 2-core laptop. */
ts_train_opts ts_train_opts_default(void);

/** What a batch costs: a trainer's loss, called once per step. */
typedef struct {
    /**
     * Forward, loss and backward of @p m on @p b: gradients += dLoss/dθ (the
     * loop zeroed them). Sets *loss (the number the optimizer minimises, the
     * CSV's `loss`) and stats[0..n_stats-1]. A non-finite *loss is not an
     * error here: the loop stops on it with a diagnosis.
     */
    ts_status (*step)(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats);
    void *ctx;                     /**< the loss's own data (a reference model, a temperature, ...) */
    int n_stats;                   /**< extra per-step numbers, written as extra CSV columns after the usual ones */
    const char *const *stat_names; /**< their column names */
} ts_loss;

/** A trainer: where batches come from, what they cost, and optional hooks. */
typedef struct {
    const char *label;        /**< first word of the progress line and of errors, e.g. "pretrain" */
    ts_batch_source *data;    /**< training batches (its state is saved and restored) */
    ts_loss loss;             /**< forward + loss + backward */
    /** Held-out loss of @p m (NAN = none); NULL = no evaluation. */
    float (*eval)(void *ctx, ts_model *m);
    void *eval_ctx;           /**< passed to eval */
    /** Called after the backward, before clipping and AdamW (appendix C sums gradients over ranks here); may be NULL. */
    ts_status (*after_backward)(void *ctx, ts_model *m, long step);
    void *after_backward_ctx; /**< passed to after_backward */
    uint64_t fingerprint;     /**< what must match between a run and its resume: ts_train_fingerprint() */
} ts_trainer;

/**
 * @brief What must match between a run and its resume: the parameter count,
 *        batch shape, step count, warmup, seed, learning rates, clip, weight
 *        decay, (when on) the MoE bias-update speed and (when not float32) the
 *        precision of the linear layers.
 */
uint64_t ts_train_fingerprint(const ts_model *m, const ts_train_opts *o);

/**
 * @brief Train @p m (created with the optimizer moments) for o->steps steps.
 * With o->resume the weights, moments, step and the batch source's state come
 * from o->out_dir and the run continues exactly where it stopped; a training
 * state that does not belong to the weights beside it (another save's, a file
 * copied by hand) is refused. A loss or gradient norm that is not finite stops
 * the run before the optimizer step (the weights stay as they were), and a
 * weight the optimizer step made non-finite stops it right after that step;
 * either way the last checkpoint is untouched, the result is TS_ERR_RANGE with
 * result->diverged_step set, and ts_last_error() names the step and the first
 * layer whose output (or parameter whose gradient or value) is not finite.
 */
ts_status ts_train(ts_model *m, const ts_trainer *t, const ts_train_opts *o, ts_train_result *result);

#endif

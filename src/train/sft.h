/**
 * @file sft.h
 * @brief Supervised fine-tuning (chapter 7; R1 §2.3): templated (prompt,
 *        response) pairs, cross-entropy on the response tokens only, run by
 *        the shared training loop (train/loop.h) from a pretrained checkpoint,
 *        with the held-out response loss on a second set of pairs.
 */
#ifndef TS_SFT_H
#define TS_SFT_H

#include "data/sft_batch.h"
#include "model/model.h"
#include "train/loop.h"

/**
 * @brief The masked SFT loss of one batch and its backward: forward to the
 *        logits, mean cross-entropy over the positions whose target is not
 *        TS_IGNORE (the response tokens), gradients += dL/dθ. The same step the
 *        training loop runs; exposed so a test can look at its gradients.
 * @param m        the model (with gradients; activations reserved for b's shape or grown)
 * @param b        the batch (tokens, targets with TS_IGNORE, optional weights)
 * @param loss     the mean response-token cross-entropy (+ the MoE balance loss, as pretraining trains)
 * @param counted  the number of response tokens counted (may be NULL)
 */
ts_status ts_sft_step(ts_model *m, const ts_batch *b, float *loss, int *counted);

/**
 * @brief Held-out loss: mean cross-entropy per response token over the first
 *        @p max_pairs pairs of @p d (all when 0), in batches of @p B. Deterministic.
 * @return the loss, or NAN when there is nothing to evaluate or memory runs out
 */
float ts_sft_eval_loss(ts_model *m, const ts_sft_data *d, int B, int max_pairs);

/**
 * @brief Fine-tune @p m (created with the optimizer moments, weights already
 *        loaded) on @p train; @p eval (may be NULL) gives the held-out loss.
 *        opts->seq_len is ignored: rows are as long as the longest pair.
 *        With opts->resume the weights, moments, step and data order come from
 *        opts->out_dir and the run continues exactly where it stopped.
 * @param m           the model
 * @param train       the training pairs
 * @param eval        held-out pairs, or NULL
 * @param eval_pairs  pairs of @p eval per evaluation (0 = all)
 * @param opts        the loop's options
 * @param result      what the run reached
 */
ts_status ts_sft(ts_model *m, const ts_sft_data *train, const ts_sft_data *eval, int eval_pairs,
                 const ts_train_opts *opts, ts_train_result *result);

#endif

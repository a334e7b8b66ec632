/**
 * @file pretrain.h
 * @brief Pretraining: random windows of a token stream, next-token
 *        cross-entropy, run by the shared training loop (train/loop.h) with
 *        periodic held-out evaluation on fixed windows of a second stream.
 */
#ifndef TS_PRETRAIN_H
#define TS_PRETRAIN_H

#include "data/batch.h"
#include "model/model.h"
#include "train/loop.h"

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

/**
 * @file sft.c
 * @brief Supervised fine-tuning: SFT's padded, masked batches (data/sft_batch.c)
 *        and the response-only cross-entropy, handed to the training loop.
 */
#include "train/sft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/loss.h"

//! [sft-loss]
ts_status ts_sft_step(ts_model *m, const ts_batch *b, float *loss, int *counted) {
    int N = b->B * b->T, V = m->cfg.vocab_size;
    ts_status st = ts_model_forward_logits(m, b->tokens, b->B, b->T);
    if (st) return st;
    memset(m->d_logits, 0, (size_t)N * V * sizeof(float));
    ts_ce_result ce; // mean over the response tokens; prompt and padding targets are TS_IGNORE: no loss, no gradient
    st = ts_loss_crossentropy(&ce, m->d_logits, NULL, m->logits, b->targets, b->weights, 0, N, V);
    if (st) return st;
    *loss = ce.loss + m->aux_loss;
    if (counted) *counted = ce.n_counted;
    return ts_model_backward_from(m, m->d_logits, NULL, 1.0f);
}
//! [sft-loss]

static const char *const sft_stat_names[] = {"response_tokens"};

static ts_status sft_loss_step(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats) {
    int counted = 0;
    ts_status st = ts_sft_step(m, b, loss, &counted);
    stats[0] = counted;
    return st;
}

float ts_sft_eval_loss(ts_model *m, const ts_sft_data *d, int B, int max_pairs) {
    if (!d || d->n == 0 || B <= 0) return NAN;
    int n = max_pairs > 0 && max_pairs < d->n ? max_pairs : d->n, T = d->max_len - 1, V = m->cfg.vocab_size;
    int *tokens = malloc((size_t)B * T * sizeof(int)), *targets = malloc((size_t)B * T * sizeof(int));
    double sum = 0, count = 0;
    for (int i = 0; tokens && targets && i < n; i += B) {
        int rows = n - i < B ? n - i : B, len = 1;
        for (int r = 0; r < rows; r++)
            if (d->seq[i + r].n - 1 > len) len = d->seq[i + r].n - 1;
        for (int r = 0; r < rows; r++)
            ts_sft_fill_row(&d->seq[i + r], len, d->pad_id, tokens + (size_t)r * len, targets + (size_t)r * len);
        ts_ce_result ce;
        if (ts_model_forward_logits(m, tokens, rows, len) ||
            ts_loss_crossentropy(&ce, NULL, NULL, m->logits, targets, NULL, 0, rows * len, V)) {
            count = 0;
            break;
        }
        sum += (double)ce.loss * ce.n_counted; // per token, not per batch: batches hold different numbers
        count += ce.n_counted;
    }
    free(tokens);
    free(targets);
    return count > 0 ? (float)(sum / count) : NAN;
}

typedef struct {
    const ts_sft_data *d;
    int B, max_pairs;
} sft_eval;

static float eval_held_out(void *ctx, ts_model *m) {
    const sft_eval *e = ctx;
    return ts_sft_eval_loss(m, e->d, e->B, e->max_pairs);
}

ts_status ts_sft(ts_model *m, const ts_sft_data *train, const ts_sft_data *eval, int eval_pairs,
                 const ts_train_opts *opts, ts_train_result *result) {
    memset(result, 0, sizeof *result);
    if (!m->params.m) return ts_fail(TS_ERR_ARG, "sft: the model was created without optimizer state");
    for (int i = 0; i < train->n; i++)
        for (int t = 0; t < train->seq[i].n; t++)
            if (train->seq[i].ids[t] < 0 || train->seq[i].ids[t] >= m->cfg.vocab_size)
                return ts_fail(TS_ERR_RANGE, "sft: pair %d: token %d is outside the model's vocabulary (0..%d)", i + 1,
                               train->seq[i].ids[t], m->cfg.vocab_size - 1);
    if (train->max_len > m->cfg.max_position_embeddings || (eval && eval->max_len > m->cfg.max_position_embeddings))
        return ts_fail(TS_ERR_RANGE, "sft: a pair is longer than max_position_embeddings %d",
                       m->cfg.max_position_embeddings);
    ts_batch_source pairs;
    ts_status st = ts_sft_source(&pairs, train, opts->batch_size, opts->seed);
    if (st) return st;
    ts_train_opts o = *opts;
    o.seq_len = pairs.T; // the fingerprint records the padded length
    sft_eval held_out = {eval, opts->batch_size, eval_pairs};
    ts_trainer t = {
        .label = "sft",
        .data = &pairs,
        .loss = {.step = sft_loss_step, .n_stats = 1, .stat_names = sft_stat_names},
        .eval = eval ? eval_held_out : NULL,
        .eval_ctx = &held_out,
        .fingerprint = ts_train_fingerprint(m, &o),
    };
    st = ts_train(m, &t, &o, result);
    ts_sft_source_free(&pairs);
    return st;
}

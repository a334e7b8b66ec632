/**
 * @file pretrain.c
 * @brief Next-token pretraining on a token stream: random windows (data/batch.c)
 *        and cross-entropy, handed to the training loop (train/loop.c).
 */
#include "train/pretrain.h"

#include "train/loss.h"
#include "train/mtp_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float ts_eval_loss(ts_model *m, const ts_token_stream *eval, int B, int T, int n_batches) {
    if (!eval || eval->n < (size_t)T + 1 || n_batches <= 0) return NAN;
    int *inputs = malloc((size_t)B * T * sizeof(int)), *targets = malloc((size_t)B * T * sizeof(int));
    size_t *starts = malloc((size_t)B * sizeof(size_t));
    if (!inputs || !targets || !starts) {
        free(inputs);
        free(targets);
        free(starts);
        return NAN;
    }
    size_t span = eval->n - (size_t)T - 1, windows = (size_t)B * n_batches;
    double sum = 0;
    for (int i = 0; i < n_batches; i++) {
        for (int b = 0; b < B; b++) starts[b] = span * (size_t)(i * B + b) / windows; // evenly spaced, fixed
        ts_windows_fill(eval, starts, B, T, inputs, targets);
        float loss = ts_model_forward(m, inputs, targets, B, T);
        sum += loss == loss ? m->ce_loss : loss; // held out: the cross-entropy alone, without the MoE balance loss
    }
    free(inputs);
    free(targets);
    free(starts);
    return (float)(sum / n_batches);
}

double ts_unigram_entropy(const ts_token_stream *s, int vocab_size) {
    double *count = calloc((size_t)vocab_size, sizeof(double));
    if (!count || s->n == 0) {
        free(count);
        return NAN;
    }
    for (size_t i = 0; i < s->n; i++) count[s->tokens[i]] += 1;
    double h = 0;
    for (int v = 0; v < vocab_size; v++)
        if (count[v] > 0) h -= count[v] / s->n * log(count[v] / s->n);
    free(count);
    return h;
}

//! [pretrain-loss]
/* Next-token cross-entropy (+ the MoE balance loss, chapter 5) and its backward,
 * through the open model: forward to the logits, the loss (train/loss.c) writes
 * dL/dlogits, the backward starts from there. Per-token weights and masked
 * targets come with the batch (SFT's and GRPO's sources fill them). */
static ts_status cross_entropy_step(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats) {
    int N = b->B * b->T, V = m->cfg.vocab_size;
    ts_status st = ts_model_forward_logits(m, b->tokens, b->B, b->T);
    if (st) return st; /* a bad token or no memory, not a divergence */
    memset(m->d_logits, 0, (size_t)N * V * sizeof(float));
    ts_ce_result ce;
    st = ts_loss_crossentropy(&ce, m->d_logits, NULL, m->logits, b->targets, b->weights, 0, N, V);
    if (st) return st;
    *loss = ce.loss + m->aux_loss; // the balance loss joins the objective at weight 1, as chapter 5 trains
    return ts_model_backward_from(m, m->d_logits, NULL, 1.0f);
}
//! [pretrain-loss]

/* Chapter 6: with MTP modules the objective is L_main + (λ/D)·Σ_k L_k (train/mtp_loss.c);
 * the CSV gets the modules' mean loss as an extra column. */
typedef struct {
    float lambda, bias_update_speed;
} mtp_ctx;

static const char *const mtp_stat_names[] = {"mtp_loss"};

static ts_status mtp_step(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats) {
    const mtp_ctx *c = ctx;
    ts_mtp_loss_result r;
    ts_status st = ts_mtp_loss_step(m, b->tokens, b->targets, b->weights, b->B, b->T, c->lambda, 1.0f, &r);
    if (st) return st;
    *loss = r.loss;
    stats[0] = r.mtp_mean;
    // the modules' MoE layers balance like the main ones (the loop moves the main layers' biases);
    // their selection biases get no gradient, so moving them before AdamW's step is the same
    const ts_config *cfg = &m->cfg;
    for (int l = cfg->num_hidden_layers; l < cfg->num_hidden_layers + cfg->num_nextn_predict_layers; l++)
        if (c->bias_update_speed > 0 && ts_moe_is_layer(cfg, l))
            moe_update_bias(m->w.layers[l].moe.bias, m->acts[l].moe.counts, cfg->n_routed_experts, c->bias_update_speed);
    return TS_OK;
}

typedef struct {
    const ts_token_stream *stream;
    int B, T, n_batches;
} eval_windows;

static float eval_held_out(void *ctx, ts_model *m) {
    const eval_windows *e = ctx;
    return ts_eval_loss(m, e->stream, e->B, e->T, e->n_batches);
}

ts_status ts_pretrain(ts_model *m, const ts_token_stream *train, const ts_token_stream *eval,
                      const ts_train_opts *o, ts_train_result *result) {
    int B = o->batch_size, T = o->seq_len;
    memset(result, 0, sizeof *result);
    if (!m->params.m) return ts_fail(TS_ERR_ARG, "pretrain: the model was created without optimizer state");
    if (train->n < (size_t)T + 2)
        return ts_fail(TS_ERR_RANGE, "pretrain: the training data has %zu tokens, fewer than one window of %d", train->n,
                       T + 1);
    for (size_t i = 0; i < train->n; i++)
        if (train->tokens[i] < 0 || train->tokens[i] >= m->cfg.vocab_size)
            return ts_fail(TS_ERR_RANGE, "pretrain: token %d at position %zu is outside the vocabulary (0..%d)",
                           train->tokens[i], i, m->cfg.vocab_size - 1);
    ts_batch_source windows;
    ts_status st = ts_windows_source(&windows, train, B, T, o->seed);
    if (st) return st;
    eval_windows held_out = {eval, B, T, o->eval_batches};
    mtp_ctx mtp = {o->mtp_lambda, o->bias_update_speed};
    ts_trainer t = {
        .label = "pretrain",
        .data = &windows,
        .loss = {.step = cross_entropy_step},
        .eval = eval ? eval_held_out : NULL,
        .eval_ctx = &held_out,
        .fingerprint = ts_train_fingerprint(m, o),
    };
    if (m->cfg.num_nextn_predict_layers > 0) { // chapter 6
        if (!(o->mtp_lambda >= 0.0f) || !isfinite(o->mtp_lambda))
            return ts_fail(TS_ERR_ARG, "pretrain: mtp_lambda %g must be finite and >= 0", (double)o->mtp_lambda);
        t.loss = (ts_loss){.step = mtp_step, .ctx = &mtp, .n_stats = 1, .stat_names = mtp_stat_names};
    }
    return ts_train(m, &t, o, result);
}

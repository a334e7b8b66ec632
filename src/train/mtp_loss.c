/**
 * @file mtp_loss.c
 * @brief L_main + (λ/D)·Σ_k L_k through the open model and the MTP modules.
 */
#include "train/mtp_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/loss.h"

/* Depth k's cross-entropy: targets and weights shifted by k; weight w_n·scale,
 * so the gradient added to d_logits is scale·dL_k/dlogits. Returns L_k unweighted. */
static ts_status depth_loss(ts_model *m, int k, const int *targets, const float *weights, int B, int T, float scale,
                            float *d_logits, int *tk, float *wk, float *tok_loss, float *Lk) {
    int Tk = ts_mtp_len(T, k), N = B * Tk, V = m->cfg.vocab_size;
    ts_mtp_targets(tk, targets, B, T, k);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Tk; i++) wk[b * Tk + i] = scale * (weights ? weights[b * T + i + k] : 1.0f);
    ts_ce_result ce;
    ts_status st = ts_loss_crossentropy(&ce, d_logits, tok_loss, m->mtp_acts[k - 1].logits, tk, wk, 0, N, V);
    if (st) return st;
    double sum = 0;
    for (int n = 0; n < N; n++) sum += tok_loss[n];
    *Lk = ce.n_counted ? (float)(sum / ce.n_counted) : 0.0f;
    return TS_OK;
}

static ts_status run(ts_model *m, const int *tokens, const int *targets, const float *weights, int B, int T,
                     float lambda, float aux_weight, int backward, ts_mtp_loss_result *res) {
    memset(res, 0, sizeof *res);
    if (!(lambda >= 0.0f) || !isfinite(lambda))
        return ts_fail(TS_ERR_ARG, "MTP loss: lambda %g must be finite and >= 0", (double)lambda);
    int N = B * T, V = m->cfg.vocab_size, C = m->cfg.hidden_size, D = m->cfg.num_nextn_predict_layers;
    ts_status st = ts_model_forward_logits(m, tokens, B, T);
    if (st) return st;
    //! [mtp-loss]
    // L_main: the main head's cross-entropy, as pretraining computes it
    if (backward) memset(m->d_logits, 0, (size_t)N * V * sizeof(float));
    ts_ce_result ce;
    if ((st = ts_loss_crossentropy(&ce, backward ? m->d_logits : NULL, NULL, m->logits, targets, weights, 0, N, V)))
        return st;
    res->main_loss = ce.loss;
    res->aux_loss = m->aux_loss;
    if (D == 0) { // chapter 5's step exactly
        res->loss = ce.loss + aux_weight * m->aux_loss;
        return backward ? ts_model_backward_from(m, m->d_logits, NULL, aux_weight) : TS_OK;
    }
    // L_k, k = 1..D: module k's cross-entropy, weighted λ/D in the objective
    if ((st = ts_mtp_forward(m, D))) return st;
    int *tk = malloc((size_t)N * sizeof(int));
    float *wk = malloc((size_t)N * sizeof(float)), *tok_loss = malloc((size_t)N * sizeof(float));
    float *d_hidden = backward ? calloc((size_t)N * C, sizeof(float)) : NULL;
    float **dl = malloc((size_t)D * sizeof(float *));
    if (!tk || !wk || !tok_loss || (backward && !d_hidden) || !dl) {
        st = ts_fail(TS_ERR_NOMEM, "MTP loss: out of memory");
        goto out;
    }
    float scale = lambda / (float)D;
    double sum = 0;
    for (int k = 1; k <= D && !st; k++) {
        size_t Nk = (size_t)B * ts_mtp_len(T, k);
        dl[k - 1] = backward && Nk ? m->mtp_acts[k - 1].d_logits : NULL;
        if (dl[k - 1]) memset(dl[k - 1], 0, Nk * V * sizeof(float));
        float Lk = 0.0f;
        if (Nk) st = depth_loss(m, k, targets, weights, B, T, scale, dl[k - 1], tk, wk, tok_loss, &Lk);
        if (k <= 8) res->mtp_loss[k - 1] = Lk;
        sum += Lk;
    }
    if (st) goto out;
    res->mtp_mean = (float)(sum / D);
    res->aux_loss += m->mtp_aux_loss;
    res->loss = ce.loss + scale * (float)sum + aux_weight * res->aux_loss;
    // backward: the modules first (D down to 1), then the main model from both of its outputs
    if (backward && !(st = ts_mtp_backward(m, dl, d_hidden, aux_weight)))
        st = ts_model_backward_from(m, m->d_logits, d_hidden, aux_weight);
    //! [mtp-loss]
out:
    free(tk);
    free(wk);
    free(tok_loss);
    free(d_hidden);
    free(dl);
    return st;
}

ts_status ts_mtp_loss_step(ts_model *m, const int *tokens, const int *targets, const float *weights, int B, int T,
                           float lambda, float aux_weight, ts_mtp_loss_result *res) {
    if (m->mode == TS_MODEL_FROZEN)
        return ts_fail(TS_ERR_ARG, "MTP loss step on a frozen model: it has no gradients (create it trainable)");
    if (!isfinite(aux_weight) || aux_weight < 0.0f)
        return ts_fail(TS_ERR_ARG, "aux_weight %g: expected a finite weight >= 0", (double)aux_weight);
    return run(m, tokens, targets, weights, B, T, lambda, aux_weight, 1, res);
}

ts_status ts_mtp_eval(ts_model *m, const int *tokens, const int *targets, int B, int T, ts_mtp_loss_result *res) {
    return run(m, tokens, targets, NULL, B, T, m->cfg.num_nextn_predict_layers > 0 ? 1.0f : 0.0f, 1.0f, 0, res);
}

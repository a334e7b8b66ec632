/**
 * @file rollout.c
 * @brief GRPO rollout batches: layout and filling (see rollout.h).
 */
#include "data/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ts_status ts_rollout_alloc(ts_rollout *r, int P, int G, int T, int with_ref) {
    memset(r, 0, sizeof *r);
    if (P <= 0 || G <= 0 || T < 2)
        return ts_fail(TS_ERR_ARG, "rollout: %d prompts x %d completions x %d positions: expected P, G >= 1, T >= 2", P,
                       G, T);
    size_t n = (size_t)P * G, nt = n * (size_t)T;
    r->tokens = ts_malloc(nt * sizeof(int), "rollout tokens");
    r->targets = ts_malloc(nt * sizeof(int), "rollout targets");
    r->prompt_len = ts_malloc(n * sizeof(int), "rollout prompt lengths");
    r->completion_len = ts_malloc(n * sizeof(int), "rollout completion lengths");
    r->rewards = ts_malloc(n * sizeof(float), "rollout rewards");
    r->old_logp = ts_malloc(nt * sizeof(double), "rollout old log-probs");
    if (with_ref) r->ref_logp = ts_malloc(nt * sizeof(double), "rollout reference log-probs");
    if (!r->tokens || !r->targets || !r->prompt_len || !r->completion_len || !r->rewards || !r->old_logp ||
        (with_ref && !r->ref_logp)) {
        ts_rollout_free(r);
        return TS_ERR_NOMEM;
    }
    r->P = P;
    r->G = G;
    r->T = T;
    memset(r->tokens, 0, nt * sizeof(int));
    for (size_t k = 0; k < nt; k++) r->targets[k] = TS_IGNORE;
    memset(r->prompt_len, 0, n * sizeof(int));
    memset(r->completion_len, 0, n * sizeof(int));
    memset(r->rewards, 0, n * sizeof(float));
    for (size_t k = 0; k < nt; k++) r->old_logp[k] = 0.0;
    if (r->ref_logp)
        for (size_t k = 0; k < nt; k++) r->ref_logp[k] = 0.0;
    return TS_OK;
}

void ts_rollout_free(ts_rollout *r) {
    free(r->tokens);
    free(r->targets);
    free(r->prompt_len);
    free(r->completion_len);
    free(r->rewards);
    free(r->old_logp);
    free(r->ref_logp);
    free(r->token_adv);
    memset(r, 0, sizeof *r);
}

ts_status ts_rollout_set(ts_rollout *r, int i, const int *prompt, int p, const int *completion, int c, float reward,
                         int pad_id) {
    int n = r->P * r->G, T = r->T;
    if (i < 0 || i >= n) return ts_fail(TS_ERR_ARG, "rollout: sequence %d outside 0..%d", i, n - 1);
    if (p < 1 || c < 1 || p > T - c)
        return ts_fail(TS_ERR_RANGE,
                       "rollout: sequence %d has a prompt of %d and a completion of %d tokens: expected at least 1 "
                       "each, %d in all at most",
                       i, p, c, T);
    if (!isfinite(reward)) return ts_fail(TS_ERR_RANGE, "rollout: sequence %d has reward %g: expected a finite number", i,
                                          (double)reward);
    int *tok = r->tokens + (size_t)i * T, *tgt = r->targets + (size_t)i * T;
    memcpy(tok, prompt, (size_t)p * sizeof(int));
    memcpy(tok + p, completion, (size_t)c * sizeof(int));
    for (int t = p + c; t < T; t++) tok[t] = pad_id;
    // position t predicts tokens[t+1]: the completion is predicted at p−1 .. p+c−2
    for (int t = 0; t < T; t++) tgt[t] = t >= p - 1 && t <= p + c - 2 ? tok[t + 1] : TS_IGNORE;
    r->prompt_len[i] = p;
    r->completion_len[i] = c;
    r->rewards[i] = reward;
    return TS_OK;
}

long ts_rollout_tokens(const ts_rollout *r) {
    long s = 0;
    for (int i = 0; i < r->P * r->G; i++) s += r->completion_len[i];
    return s;
}

ts_status ts_rollout_to_batch(const ts_rollout *r, ts_batch *out) {
    int n = r->P * r->G;
    if (out->cap_B < n || out->cap_T < r->T)
        return ts_fail(TS_ERR_ARG, "rollout: batch buffer %d x %d is smaller than the rollout's %d x %d", out->cap_B,
                       out->cap_T, n, r->T);
    out->B = n;
    out->T = r->T;
    size_t nt = (size_t)n * r->T;
    memcpy(out->tokens, r->tokens, nt * sizeof(int));
    memcpy(out->targets, r->targets, nt * sizeof(int));
    if (out->weights)
        for (size_t k = 0; k < nt; k++) out->weights[k] = 1.0f;
    return TS_OK;
}

/**
 * @file batch.c
 * @brief Batches, and pretraining's random windows of a token stream.
 */
#include "data/batch.h"

#include <stdlib.h>
#include <string.h>

ts_status ts_batch_alloc(ts_batch *b, int B, int T, int with_weights) {
    memset(b, 0, sizeof *b);
    if (B <= 0 || T <= 0) return ts_fail(TS_ERR_ARG, "batch: shape %d x %d must be positive", B, T);
    size_t n = (size_t)B * (size_t)T;
    b->tokens = ts_malloc(n * sizeof(int), "batch tokens");
    b->targets = ts_malloc(n * sizeof(int), "batch targets");
    if (with_weights) b->weights = ts_malloc(n * sizeof(float), "batch weights");
    if (!b->tokens || !b->targets || (with_weights && !b->weights)) {
        ts_batch_free(b);
        return TS_ERR_NOMEM;
    }
    b->B = b->cap_B = B;
    b->T = b->cap_T = T;
    return TS_OK;
}

void ts_batch_free(ts_batch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->weights);
    memset(b, 0, sizeof *b);
}

void ts_windows_fill(const ts_token_stream *s, const size_t *starts, int B, int T, int *tokens, int *targets) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            tokens[b * T + t] = s->tokens[starts[b] + t];
            targets[b * T + t] = s->tokens[starts[b] + t + 1];
        }
}

static ts_status windows_next(ts_batch_source *src, ts_batch *out) {
    const ts_token_stream *s = src->ctx;
    int B = src->B, T = src->T;
    if (out->cap_B < B || out->cap_T < T) return ts_fail(TS_ERR_ARG, "windows: batch buffer smaller than %d x %d", B, T);
    out->B = B;
    out->T = T;
    size_t starts[64], *many = B > 64 ? malloc((size_t)B * sizeof *many) : NULL;
    size_t *st = B > 64 ? many : starts;
    if (!st) return ts_fail(TS_ERR_NOMEM, "windows: out of memory for %d window starts", B);
    for (int b = 0; b < B; b++) st[b] = (size_t)ts_rng_below(&src->state.rng[0], s->n - (size_t)T - 1);
    ts_windows_fill(s, st, B, T, out->tokens, out->targets);
    free(many);
    return TS_OK;
}

ts_status ts_windows_source(ts_batch_source *src, const ts_token_stream *s, int B, int T, uint64_t seed) {
    memset(src, 0, sizeof *src);
    if (B <= 0 || T <= 0) return ts_fail(TS_ERR_ARG, "windows: shape %d x %d must be positive", B, T);
    if (s->n < (size_t)T + 2)
        return ts_fail(TS_ERR_RANGE, "the training data has %zu tokens, fewer than one window of %d", s->n, T + 1);
    src->next = windows_next;
    src->ctx = (void *)s;
    src->B = B;
    src->T = T;
    src->state.n_rng = 1;
    ts_rng_seed(&src->state.rng[0], seed, TS_STREAM_DATA);
    return TS_OK;
}

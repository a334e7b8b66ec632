/**
 * @file sampling.c
 * @brief Batched sampling through the KV cache (see sampling.h).
 */
#include "model/sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ts_status ts_gen_create(ts_gen_batch *g, const ts_model *m, int B, int max_T, int max_new) {
    memset(g, 0, sizeof *g);
    if (B < 1 || max_T < 2 || max_new < 1)
        return ts_fail(TS_ERR_ARG, "sampling: %d sequences of %d positions, %d new: expected B >= 1, T >= 2, new >= 1",
                       B, max_T, max_new);
    int V = m->cfg.vocab_size;
    ts_status st = ts_kvcache_create(&g->cache, m, B, max_T);
    if (st) return st;
    g->B = B;
    g->max_T = max_T;
    g->max_new = max_new;
    g->logits = ts_malloc((size_t)B * V * sizeof(float), "sampling logits");
    g->gen = ts_malloc((size_t)B * max_new * sizeof(int), "generated tokens");
    g->len = ts_calloc((size_t)B, sizeof(int), "generated lengths");
    g->active = ts_calloc((size_t)B, sizeof(int), "active sequences");
    g->next = ts_calloc((size_t)B, sizeof(int), "next tokens");
    g->rng = ts_calloc((size_t)B, sizeof(ts_rng), "sampling streams");
    if (!g->logits || !g->gen || !g->len || !g->active || !g->next || !g->rng) {
        ts_gen_free(g);
        return TS_ERR_NOMEM;
    }
    return TS_OK;
}

void ts_gen_free(ts_gen_batch *g) {
    ts_kvcache_free(&g->cache);
    free(g->logits);
    free(g->gen);
    free(g->len);
    free(g->active);
    free(g->next);
    free(g->rng);
    memset(g, 0, sizeof *g);
}

/* Sequence @p dst starts as a copy of sequence @p src: every cached position of
 * every layer (the latent for absorbed MLA, keys and values otherwise). */
static void kvcache_copy_seq(ts_kvcache *c, int dst, int src) {
    int n = c->len[src];
    for (int l = 0; l < c->L; l++) {
        if (c->k) memcpy(ts_kvcache_row(c->k, c, c->kv_dim, l, dst, 0), ts_kvcache_row(c->k, c, c->kv_dim, l, src, 0),
                         (size_t)n * c->kv_dim * sizeof(float));
        if (c->v) memcpy(ts_kvcache_row(c->v, c, c->v_dim, l, dst, 0), ts_kvcache_row(c->v, c, c->v_dim, l, src, 0),
                         (size_t)n * c->v_dim * sizeof(float));
        if (c->latent)
            memcpy(ts_kvcache_latent_at(c, l, dst, 0), ts_kvcache_latent_at(c, l, src, 0),
                   (size_t)n * c->latent_dim * sizeof(float));
    }
    c->len[dst] = n;
}

//! [batch-sample]
/* Prefill each prompt once, copy its cache to its k sequences, then decode
 * every unfinished sequence together, one token per step, until each has
 * written <|eos|>, the stop id (</answer>: nothing after the answer) or max_new tokens. */
ts_status ts_gen_run(ts_gen_batch *g, ts_model *m, const int *const *prompts, const int *prompt_len, int n, int k,
                     const ts_gen_opts *o) {
    int V = m->cfg.vocab_size;
    if (n < 1 || k < 1 || (long)n * k > g->B || o->max_new < 1 || o->max_new > g->max_new)
        return ts_fail(TS_ERR_ARG, "sampling: %d prompts x %d samples, %d new tokens, for %d sequences of %d new", n, k,
                       o->max_new, g->B, g->max_new);
    ts_status st = TS_OK;
    for (int b = 0; b < g->B; b++) g->active[b] = g->len[b] = 0;
    for (int i = 0; i < n && !st; i++) {
        int b0 = i * k;
        if (prompt_len[i] < 1 || prompt_len[i] + 1 > g->max_T)
            return ts_fail(TS_ERR_RANGE, "sampling: prompt %d is %d tokens, the context holds %d", i + 1, prompt_len[i],
                           g->max_T);
        if ((st = ts_model_prefill(m, &g->cache, b0, prompts[i], prompt_len[i], g->logits + (size_t)b0 * V))) break;
        for (int j = 0; j < k; j++) {
            int b = b0 + j;
            if (j > 0) {
                kvcache_copy_seq(&g->cache, b, b0);
                memcpy(g->logits + (size_t)b * V, g->logits + (size_t)b0 * V, (size_t)V * sizeof(float));
            }
            g->active[b] = 1;
        }
    }
    for (int step = 0; !st; step++) {
        int any = 0;
        for (int b = 0; b < g->B; b++) {
            if (!g->active[b]) continue;
            for (int v = o->n_valid; v < V; v++) g->logits[(size_t)b * V + v] = -INFINITY; // padding ids
            int t = ts_sample(g->logits + (size_t)b * V, V, &o->sampler, &g->rng[b]);
            if (t != o->eos_id || o->keep_eos) g->gen[(size_t)b * g->max_new + g->len[b]++] = t;
            if (t == o->eos_id || t == o->stop_id || g->len[b] == o->max_new || g->cache.len[b] + 1 >= g->max_T)
                g->active[b] = 0; // done: nothing after </answer> is generated
            g->next[b] = t;
            any |= g->active[b];
        }
        if (!any) break;
        st = ts_model_decode(m, &g->cache, g->next, g->active, g->logits);
    }
    return st;
}
//! [batch-sample]

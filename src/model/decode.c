/**
 * @file decode.c
 * @brief Inference: the KV cache, prefill, one-token decode steps, sampling.
 *
 * Training runs the whole sequence at once. Generation splits the work the
 * way inference engines do: *prefill* runs the prompt through the ordinary
 * causal forward and keeps each layer's roped keys and values; each *decode*
 * step then processes one new token per sequence, attending over the cached
 * keys and values instead of recomputing them.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "model/gqa.h"
#include "model/model.h"

ts_status ts_kvcache_create(ts_kvcache *c, const ts_model *m, int B, int max_T) {
    return ts_kvcache_create_for(c, &m->cfg, B, max_T, TS_KV_ABSORBED);
}

size_t ts_kvcache_bytes_per_token(const ts_kvcache *c) {
    return c->B > 0 && c->max_T > 0 ? c->bytes / ((size_t)c->B * c->max_T) : 0;
}

ts_status ts_kvcache_create_for(ts_kvcache *c, const ts_config *cfg, int B, int max_T, ts_kv_mode mode) {
    memset(c, 0, sizeof *c);
    if (B <= 0 || max_T <= 0 || max_T > cfg->max_position_embeddings)
        return ts_fail(TS_ERR_RANGE, "KV cache: need 1 <= max_T <= max_position_embeddings (%d), got %d",
                       cfg->max_position_embeddings, max_T);
    int C = cfg->hidden_size, V = cfg->vocab_size, F = cfg->intermediate_size;
    int HD = cfg->num_attention_heads * cfg->head_dim;
    c->L = cfg->num_hidden_layers;
    c->B = B;
    c->max_T = max_T;
    int mla = ts_attn_kind_of(cfg) == TS_ATTN_MLA;
    c->kv_dim = c->v_dim = (int)(mha_cache_floats(cfg) / 2); // MHA/GQA: as many floats of keys as of values
    size_t per = (size_t)c->L * B * max_T * c->kv_dim;
    if (mla && mla_kvcache_init(c, cfg, mode == TS_KV_NAIVE)) { // chapter 4: the latent, or full keys/values
        ts_kvcache_free(c);
        return TS_ERR_NOMEM;
    }
    if (!mla) {
        c->k = ts_calloc(per, sizeof(float), "KV cache keys");
        c->v = ts_calloc(per, sizeof(float), "KV cache values");
        c->bytes = 2 * per * sizeof(float);
    }
    c->len = ts_calloc((size_t)B, sizeof(int), "KV cache lengths");
    size_t rows = (size_t)B;
    c->x = ts_malloc(rows * C * sizeof(float), "decode scratch");
    c->ln = ts_malloc(rows * C * sizeof(float), "decode scratch");
    c->step.q = ts_malloc(rows * HD * sizeof(float), "decode scratch");
    c->step.kn = ts_malloc(rows * c->kv_dim * sizeof(float), "decode scratch");
    c->step.vn = ts_malloc(rows * c->kv_dim * sizeof(float), "decode scratch");
    c->step.att_out = ts_malloc(rows * HD * sizeof(float), "decode scratch");
    c->res = ts_malloc(rows * C * sizeof(float), "decode scratch");
    c->gate = ts_malloc(rows * F * sizeof(float), "decode scratch");
    c->up = ts_malloc(rows * F * sizeof(float), "decode scratch");
    c->hidden = ts_malloc(rows * F * sizeof(float), "decode scratch");
    c->step.scores = ts_malloc(rows * cfg->num_attention_heads * (size_t)max_T * sizeof(float), "decode scratch");
    c->logits = ts_malloc(rows * V * sizeof(float), "decode scratch");
    c->rows = ts_malloc(rows * 2 * sizeof(int), "decode scratch");
    if ((!mla && (!c->k || !c->v)) || !c->len || !c->x || !c->ln || !c->step.q || !c->step.kn || !c->step.vn ||
        !c->step.att_out || !c->res || !c->gate || !c->up || !c->hidden || !c->step.scores || !c->logits || !c->rows) {
        ts_kvcache_free(c);
        return TS_ERR_NOMEM;
    }
    if (cfg->n_routed_experts > 0) { // chapter 5: routing and expert buffers for B rows of one token
        ts_arena measure = {0};
        c->moe = ts_calloc(1, sizeof *c->moe, "decode MoE buffers");
        if (c->moe) moe_carve_acts(c->moe, &measure, cfg, B, 1);
        if (!c->moe || ts_arena_create(&c->moe_arena, measure.used)) {
            ts_kvcache_free(c);
            return TS_ERR_NOMEM;
        }
        moe_carve_acts(c->moe, &c->moe_arena, cfg, B, 1);
    }
    return TS_OK;
}

void ts_kvcache_free(ts_kvcache *c) {
    float *bufs[] = {c->k, c->v, c->x, c->ln, c->step.q, c->step.kn, c->step.vn, c->step.att_out, c->res,
                     c->gate, c->up, c->hidden, c->step.scores, c->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(c->len);
    free(c->rows);
    mla_kvcache_free(c);
    free(c->moe);
    ts_arena_free(&c->moe_arena);
    memset(c, 0, sizeof *c);
}

ts_status ts_model_prefill(ts_model *m, ts_kvcache *c, int b, const int *tokens, int n, float *logits) {
    const ts_config *cfg = &m->cfg;
    if (b < 0 || b >= c->B) return ts_fail(TS_ERR_RANGE, "prefill: sequence %d outside the cache's %d", b, c->B);
    if (n <= 0 || n > c->max_T)
        return ts_fail(TS_ERR_RANGE, "prefill: prompt of %d tokens does not fit the cache (max %d)", n, c->max_T);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return ts_fail(TS_ERR_RANGE, "prefill: token %d at position %d is outside the vocabulary (0..%d)", tokens[i],
                           i, cfg->vocab_size - 1);
    ts_status st = ts_model_reserve(m, 1, n);
    if (st) return st;
    ts_model_forward(m, tokens, NULL, 1, n);
    for (int l = 0; l < c->L; l++) {
        if (m->attn == TS_ATTN_MLA) mla_prefill(c, l, b, &m->acts[l].mla, cfg, n); // chapter 4: latent or full k/v
        else mha_prefill(c, l, b, &m->acts[l].attn, n);
    }
    c->len[b] = n;
    if (logits) memcpy(logits, m->logits + (size_t)(n - 1) * cfg->vocab_size, (size_t)cfg->vocab_size * sizeof(float));
    return TS_OK;
}

ts_status ts_model_decode(ts_model *m, ts_kvcache *c, const int *tokens, const int *active, float *logits) {
    const ts_config *cfg = &m->cfg;
    int C = cfg->hidden_size, V = cfg->vocab_size, F = cfg->intermediate_size;
    /* Gather the active sequences into rows 0..R-1. */
    int *seq = c->rows, *pos = c->rows + c->B, R = 0;
    for (int b = 0; b < c->B; b++) {
        if (active && !active[b]) continue;
        if (c->len[b] >= c->max_T) return ts_fail(TS_ERR_RANGE, "decode: sequence %d is full (%d tokens)", b, c->max_T);
        if (tokens[b] < 0 || tokens[b] >= V)
            return ts_fail(TS_ERR_RANGE, "decode: token %d is outside the vocabulary (0..%d)", tokens[b], V - 1);
        seq[R] = b;
        pos[R] = c->len[b];
        R++;
    }
    if (R == 0) return TS_OK;
    for (int r = 0; r < R; r++) memcpy(c->x + (size_t)r * C, m->w.embed_tokens + (size_t)tokens[seq[r]] * C, C * sizeof(float));
    ts_mlp_acts mlp = {c->gate, c->up, c->hidden};
    ts_rope rope = ts_model_rope(m);
    for (int l = 0; l < cfg->num_hidden_layers; l++) {
        const ts_layer_weights *w = &m->w.layers[l];
        rmsnorm_forward(c->ln, c->res, c->x, w->input_layernorm, R, C, C, C, cfg->rms_norm_eps);
        // appends to the cache, res = attention output
        switch (m->attn) {
        case TS_ATTN_MHA: mha_decode(c->res, c->ln, &w->attn, &rope, &c->step, c, l, seq, pos, R, cfg); break;
        case TS_ATTN_GQA: gqa_decode(c->res, c->ln, &w->attn, &rope, &c->step, c, l, seq, pos, R, cfg); break;
        case TS_ATTN_MLA: mla_decode(c->res, c->ln, &w->mla, &rope, c->mla_scratch, c, l, seq, pos, R, cfg); break;
        }
        for (long i = 0; i < (long)R * C; i++) c->x[i] += c->res[i];
        rmsnorm_forward(c->ln, c->res, c->x, w->post_attention_layernorm, R, C, C, C, cfg->rms_norm_eps);
        if (ts_moe_is_layer(cfg, l)) moe_forward(c->res, c->moe, c->ln, &w->moe, cfg, R, 1); // chapter 5
        else mlp_forward(c->res, &mlp, c->ln, &w->mlp, R, C, F);
        for (long i = 0; i < (long)R * C; i++) c->x[i] += c->res[i];
    }
    rmsnorm_forward(c->ln, c->res, c->x, m->w.norm, R, C, C, C, cfg->rms_norm_eps);
    matmul_forward(c->logits, c->ln, m->w.lm_head, NULL, R, C, V);
    for (int r = 0; r < R; r++) {
        c->len[seq[r]]++;
        memcpy(logits + (size_t)seq[r] * V, c->logits + (size_t)r * V, V * sizeof(float));
    }
    return TS_OK;
}

/* ------------------------------------------------------------------ */
/* Sampling                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    double p;
    int id;
} prob_id;

static int by_prob_desc(const void *a, const void *b) {
    const prob_id *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id; /* ties: lower id first, so the order is total */
}

//! [sample]
int ts_sample(const float *logits, int V, const ts_sampler *s, ts_rng *rng) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temperature <= 0) return best; // greedy
    prob_id *pi = malloc((size_t)V * sizeof *pi);
    if (!pi) return best;
    double sum = 0;
    for (int i = 0; i < V; i++) { // softmax(logits / temperature)
        pi[i].p = exp(((double)logits[i] - logits[best]) / s->temperature);
        pi[i].id = i;
        sum += pi[i].p;
    }
    qsort(pi, (size_t)V, sizeof *pi, by_prob_desc);
    int keep = V;
    if (s->top_k > 0 && s->top_k < keep) keep = s->top_k; // top-k
    if (s->top_p < 1.0f) {                                // top-p: smallest prefix with mass >= p
        double mass = 0;
        for (int i = 0; i < keep; i++) {
            mass += pi[i].p / sum;
            if (mass >= s->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double kept = 0;
    for (int i = 0; i < keep; i++) kept += pi[i].p;
    double u = ts_rng_uniform_double(rng) * kept, acc = 0;
    int pick = pi[keep - 1].id;
    for (int i = 0; i < keep; i++) {
        acc += pi[i].p;
        if (u < acc) {
            pick = pi[i].id;
            break;
        }
    }
    free(pi);
    return pick;
}
//! [sample]

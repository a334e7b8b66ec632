/**
 * @file mla.c
 * @brief Multi-head Latent Attention (chapter 4): parameters, the training
 *        forward/backward ("naive": keys and values up-projected per head) and
 *        the decode step, absorbed (latent cache) or naive (full cache).
 *
 * Shapes as in mla.h: H heads, dn = qk_nope_head_dim, dr = qk_rope_head_dim,
 * dq = dn + dr, dv = v_head_dim, dc = kv_lora_rank, rq = q_lora_rank.
 */
#include "model/mla.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/attention_util.h"
#include "core/linear.h"

/* Per-head dims of a config, named once. */
typedef struct {
    int C, H, dn, dr, dq, dv, dc, rq;
} mla_dims;

static mla_dims dims_of(const ts_config *c) {
    mla_dims d;
    d.C = c->hidden_size;
    d.H = c->num_attention_heads;
    d.dn = c->qk_nope_head_dim;
    d.dr = c->qk_rope_head_dim;
    d.dq = d.dn + d.dr;
    d.dv = c->v_head_dim;
    d.dc = c->kv_lora_rank;
    d.rq = c->q_lora_rank;
    return d;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

int mla_register(ts_params *p, const ts_config *c, int l) {
    mla_dims d = dims_of(c);
    typedef struct {
        const char *name;
        int rows, cols; /* cols 0: a 1-D norm weight (no weight decay) */
    } tensor;
    tensor t[7];
    int n = 0;
    if (d.rq > 0) {
        t[n++] = (tensor){"q_a_proj", d.rq, d.C};
        t[n++] = (tensor){"q_a_layernorm", d.rq, 0};
        t[n++] = (tensor){"q_b_proj", d.H * d.dq, d.rq};
    } else {
        t[n++] = (tensor){"q_proj", d.H * d.dq, d.C};
    }
    t[n++] = (tensor){"kv_a_proj_with_mqa", d.dc + d.dr, d.C};
    t[n++] = (tensor){"kv_a_layernorm", d.dc, 0};
    t[n++] = (tensor){"kv_b_proj", d.H * (d.dn + d.dv), d.dc};
    t[n++] = (tensor){"o_proj", d.C, d.H * d.dv};
    for (int i = 0; i < n; i++) {
        char name[TS_NAME_MAX];
        snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", l, t[i].name);
        int shape[2] = {t[i].rows, t[i].cols};
        if (ts_params_add(p, name, t[i].cols ? 2 : 1, shape, t[i].cols == 0) < 0) return -1;
    }
    return 0;
}

long long mla_params(const ts_config *c) {
    mla_dims d = dims_of(c);
    long long C = d.C, H = d.H;
    long long q = d.rq > 0 ? C * d.rq + d.rq + (long long)d.rq * H * d.dq // q_a_proj, q_a_layernorm, q_b_proj
                           : C * H * d.dq;                                // q_proj
    long long kv = C * (d.dc + d.dr) + d.dc + (long long)d.dc * H * (d.dn + d.dv); // kv_a_proj_with_mqa, its norm, kv_b_proj
    return q + kv + H * d.dv * C;                                                   // o_proj
}

long long mla_cache_floats(const ts_config *c, ts_kv_mode mode) {
    mla_dims d = dims_of(c);
    if (mode == TS_KV_NAIVE) return (long long)d.H * (d.dq + d.dv); // per-head keys [k_nope; k_rope] and values
    return (long long)d.dc + d.dr;                                  // the latent: normed c_kv, roped k_rope
}

//! [mla-scale]
float mla_softmax_scale(const ts_config *c) {
    float scale = 1.0f / sqrtf((float)(c->qk_nope_head_dim + c->qk_rope_head_dim));
    if (c->has_yarn && c->yarn.mscale_all_dim != 0.0f) {
        /* DeepSeek's code: softmax_scale *= mscale², mscale = 0.1·mscale_all_dim·ln(factor) + 1.
         * YaRN's "temperature": longer contexts spread attention thinner, so sharpen it. */
        float ms = yarn_get_mscale(c->yarn.factor, c->yarn.mscale_all_dim);
        scale *= ms * ms;
    }
    return scale;
}
//! [mla-scale]

void mla_scale_rope_table(float *cos_t, float *sin_t, const ts_config *c) {
    if (!c->has_yarn) return;
    float s = yarn_get_mscale(c->yarn.factor, c->yarn.mscale) / yarn_get_mscale(c->yarn.factor, c->yarn.mscale_all_dim);
    if (s == 1.0f) return;
    size_t n = (size_t)c->max_position_embeddings * (c->qk_rope_head_dim / 2);
    for (size_t i = 0; i < n; i++) {
        cos_t[i] *= s;
        sin_t[i] *= s;
    }
}

/* ------------------------------------------------------------------ */
/* Activations                                                         */
/* ------------------------------------------------------------------ */

void mla_carve_acts(ts_mla_acts *a, ts_arena *ar, const ts_config *c, int B, int T) {
    mla_dims d = dims_of(c);
    size_t N = (size_t)B * T, H = (size_t)d.H;
    a->cq = d.rq ? ts_arena_floats(ar, N * d.rq) : NULL;
    a->cq_n = d.rq ? ts_arena_floats(ar, N * d.rq) : NULL;
    a->cq_rstd = d.rq ? ts_arena_floats(ar, N) : NULL;
    a->q = ts_arena_floats(ar, N * H * d.dq);
    a->kva = ts_arena_floats(ar, N * (d.dc + d.dr));
    a->ckv = ts_arena_floats(ar, N * d.dc);
    a->ckv_rstd = ts_arena_floats(ar, N);
    a->k = ts_arena_floats(ar, N * H * d.dq);
    a->v = ts_arena_floats(ar, N * H * d.dv);
    a->att = ts_arena_floats(ar, (size_t)B * H * T * T);
    a->ctx = ts_arena_floats(ar, N * H * d.dv);
}

void mla_carve_scratch(ts_mla_scratch *s, ts_arena *ar, const ts_config *c, int B, int T) {
    mla_dims d = dims_of(c);
    size_t N = (size_t)B * T, H = (size_t)d.H;
    s->kv = ts_arena_floats(ar, N * H * (d.dn + d.dv));
    s->d_q = ts_arena_floats(ar, N * H * d.dq);
    s->d_k = ts_arena_floats(ar, N * H * d.dq);
    s->d_v = ts_arena_floats(ar, N * H * d.dv);
    s->d_ctx = ts_arena_floats(ar, N * H * d.dv);
    s->d_kv = ts_arena_floats(ar, N * H * (d.dn + d.dv));
    s->d_kva = ts_arena_floats(ar, N * (d.dc + d.dr));
    s->d_ckv = ts_arena_floats(ar, N * d.dc);
    s->d_cq_n = d.rq ? ts_arena_floats(ar, N * d.rq) : NULL;
    s->d_cq = d.rq ? ts_arena_floats(ar, N * d.rq) : NULL;
    s->att = ts_arena_floats(ar, (size_t)ts_num_threads() * T * T);
}

/* ------------------------------------------------------------------ */
/* Training path ("naive"): forward and backward                      */
/* ------------------------------------------------------------------ */

//! [mla-forward]
void mla_forward(float *y, const ts_mla_acts *a, const ts_mla_scratch *s, const float *x, const ts_mla_weights *w,
                 const int *pos, const ts_rope *rope, const ts_config *c, int B, int T) {
    float *kv = s->kv;
    mla_dims d = dims_of(c);
    int N = B * T, H = d.H, KVA = d.dc + d.dr;
    // queries: q (N,H·dq) = rmsnorm(x · W_DQᵀ) · W_UQᵀ, or x · W_Qᵀ without q_lora
    if (d.rq > 0) {
        linear_forward(a->cq, x, w->q_a_proj, NULL, N, d.C, d.rq);
        rmsnorm_forward(a->cq_n, a->cq_rstd, a->cq, w->q_a_layernorm, N, d.rq, d.rq, d.rq, c->rms_norm_eps);
        linear_forward(a->q, a->cq_n, w->q_b_proj, NULL, N, d.rq, H * d.dq);
    } else {
        linear_forward(a->q, x, w->q_proj, NULL, N, d.C, H * d.dq);
    }
    // each head is [q_nope (dn); q_rope (dr)]: rotate only the last dr dims
    rope_forward(a->q + d.dn, pos, N, H, H * d.dq, d.dq, d.dr, rope->cos, rope->sin);
    // [c_kv; k_rope] (N, dc+dr) = x · W_DKVᵀ; c_kv normed, k_rope roped in place (one head)
    linear_forward(a->kva, x, w->kv_a_proj_with_mqa, NULL, N, d.C, KVA);
    rmsnorm_forward(a->ckv, a->ckv_rstd, a->kva, w->kv_a_layernorm, N, d.dc, KVA, d.dc, c->rms_norm_eps);
    rope_forward(a->kva + d.dc, pos, N, 1, KVA, d.dr, d.dr, rope->cos, rope->sin);
    // per head [k_nope (dn); v (dv)] (N, H·(dn+dv)) = c_kv · W_UKVᵀ
    linear_forward(kv, a->ckv, w->kv_b_proj, NULL, N, d.dc, H * (d.dn + d.dv));
    // keys: k_h = [k_nope_h; k_rope] (the same roped k_rope for every head); values v_h
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            const float *src = kv + ((size_t)n * H + h) * (d.dn + d.dv);
            float *kh = a->k + ((size_t)n * H + h) * d.dq;
            memcpy(kh, src, (size_t)d.dn * sizeof(float));
            memcpy(kh + d.dn, a->kva + (size_t)n * KVA + d.dc, (size_t)d.dr * sizeof(float));
            memcpy(a->v + ((size_t)n * H + h) * d.dv, src + d.dn, (size_t)d.dv * sizeof(float));
        }
    // ctx = softmax((q_nope·k_nope + q_rope·k_rope) · scale + causal mask) v, per head
    attention_forward(a->ctx, a->att, a->q, a->k, a->v, B, T, H, d.dq, d.dv, mla_softmax_scale(c));
    linear_forward(y, a->ctx, w->o_proj, NULL, N, H * d.dv, d.C); // y (N,C) = ctx · W_Oᵀ
}
//! [mla-forward]

//! [mla-backward]
void mla_backward(float *dx, const ts_mla_weights *dw, const ts_mla_scratch *s, const float *dy, const ts_mla_acts *a,
                  const float *x, const ts_mla_weights *w, const int *pos, const ts_rope *rope, const ts_config *c,
                  int B, int T) {
    const ts_mla_weights *g = dw;
    mla_dims d = dims_of(c);
    int N = B * T, H = d.H, KVA = d.dc + d.dr, KVB = H * (d.dn + d.dv);
    memset(s->d_ctx, 0, (size_t)N * H * d.dv * sizeof(float));
    memset(s->d_q, 0, (size_t)N * H * d.dq * sizeof(float));
    memset(s->d_k, 0, (size_t)N * H * d.dq * sizeof(float));
    memset(s->d_v, 0, (size_t)N * H * d.dv * sizeof(float));
    memset(s->d_kva, 0, (size_t)N * KVA * sizeof(float));
    memset(s->d_ckv, 0, (size_t)N * d.dc * sizeof(float));
    // y = ctx · W_Oᵀ
    linear_backward(s->d_ctx, g->o_proj, NULL, dy, a->ctx, w->o_proj, N, H * d.dv, d.C);
    // ctx = softmax(q kᵀ · scale) v
    attention_backward(s->d_q, s->d_k, s->d_v, s->att, s->d_ctx, a->att, a->q, a->k, a->v, B, T, H, d.dq, d.dv,
                       mla_softmax_scale(c));
    // k_h = [k_nope_h; k_rope], v_h: k_nope and v go back to kv_b_proj's output; k_rope is
    // shared by all heads, so its gradient is the sum over heads
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            float *dst = s->d_kv + ((size_t)n * H + h) * (d.dn + d.dv);
            const float *dkh = s->d_k + ((size_t)n * H + h) * d.dq;
            memcpy(dst, dkh, (size_t)d.dn * sizeof(float));
            memcpy(dst + d.dn, s->d_v + ((size_t)n * H + h) * d.dv, (size_t)d.dv * sizeof(float));
            float *dkr = s->d_kva + (size_t)n * KVA + d.dc;
            for (int i = 0; i < d.dr; i++) dkr[i] += dkh[d.dn + i];
        }
    // [k_nope; v] = c_kv · W_UKVᵀ
    linear_backward(s->d_ckv, g->kv_b_proj, NULL, s->d_kv, a->ckv, w->kv_b_proj, N, d.dc, KVB);
    // k_rope was rotated in place: rotate its gradient back
    rope_backward(s->d_kva + d.dc, pos, N, 1, KVA, d.dr, d.dr, rope->cos, rope->sin);
    // c_kv = rmsnorm(kva[:, :dc])
    rmsnorm_backward(s->d_kva, g->kv_a_layernorm, s->d_ckv, a->kva, w->kv_a_layernorm, a->ckv_rstd, N, d.dc, KVA, d.dc);
    // [c_kv; k_rope] = x · W_DKVᵀ
    linear_backward(dx, g->kv_a_proj_with_mqa, NULL, s->d_kva, x, w->kv_a_proj_with_mqa, N, d.C, KVA);
    // q_rope was rotated in place
    rope_backward(s->d_q + d.dn, pos, N, H, H * d.dq, d.dq, d.dr, rope->cos, rope->sin);
    if (d.rq > 0) {
        memset(s->d_cq_n, 0, (size_t)N * d.rq * sizeof(float));
        memset(s->d_cq, 0, (size_t)N * d.rq * sizeof(float));
        // q = c_q · W_UQᵀ;  c_q = rmsnorm(cq);  cq = x · W_DQᵀ
        linear_backward(s->d_cq_n, g->q_b_proj, NULL, s->d_q, a->cq_n, w->q_b_proj, N, d.rq, H * d.dq);
        rmsnorm_backward(s->d_cq, g->q_a_layernorm, s->d_cq_n, a->cq, w->q_a_layernorm, a->cq_rstd, N, d.rq, d.rq,
                         d.rq);
        linear_backward(dx, g->q_a_proj, NULL, s->d_cq, x, w->q_a_proj, N, d.C, d.rq);
    } else {
        // q = x · W_Qᵀ
        linear_backward(dx, g->q_proj, NULL, s->d_q, x, w->q_proj, N, d.C, H * d.dq);
    }
}
//! [mla-backward]

/* ------------------------------------------------------------------ */
/* KV cache and decode                                                 */
/* ------------------------------------------------------------------ */

/* The decode scratch of a cache for B rows, laid out in one buffer. */
typedef struct {
    float *q;      /* (B, H·dq) queries, q_rope roped */
    float *kva;    /* (B, dc+dr) kv_a_proj_with_mqa output */
    float *lat;    /* (B, dc+dr) this token's cache entry: normed c_kv, roped k_rope */
    float *rstd;   /* (B) */
    float *qcat;   /* (B, H, dc+dr) absorbed queries [q_nope·W_UK; q_rope] */
    float *olat;   /* (B, H, dc) attention output in the latent space */
    float *ctx;    /* (B, H·dv) attention output per head, before o_proj */
    float *scores; /* (B, H, max_T) */
    float *kvb;    /* (B, H·(dn+dv)) naive: kv_b_proj output */
    float *cq;     /* (B, rq) q_a_proj output (q_lora) */
    float *cq_n;   /* (B, rq) its norm */
} dec_bufs;

/* Lay the scratch out from base (NULL: only count); returns its size in floats. */
static size_t dec_layout(dec_bufs *b, float *base, const ts_config *cfg, int B, int max_T) {
    mla_dims d = dims_of(cfg);
    size_t sizes[11] = {
        (size_t)B * d.H * d.dq, (size_t)B * (d.dc + d.dr), (size_t)B * (d.dc + d.dr), (size_t)B,
        (size_t)B * d.H * (d.dc + d.dr), (size_t)B * d.H * d.dc, (size_t)B * d.H * d.dv, (size_t)B * d.H * max_T,
        (size_t)B * d.H * (d.dn + d.dv), (size_t)B * d.rq, (size_t)B * d.rq,
    };
    float **ptrs[11] = {&b->q,    &b->kva, &b->lat,    &b->rstd, &b->qcat, &b->olat,
                        &b->ctx,  &b->scores, &b->kvb, &b->cq,   &b->cq_n};
    size_t off = 0;
    for (int i = 0; i < 11; i++) {
        *ptrs[i] = base ? base + off : NULL;
        off += sizes[i];
    }
    return off;
}

int mla_kvcache_init(ts_kvcache *c, const ts_config *cfg, int naive) {
    mla_dims d = dims_of(cfg);
    size_t tokens = (size_t)c->L * c->B * c->max_T;
    c->mla_naive = naive;
    //! [mla-cache]
    if (naive) { // full per-head keys [k_nope; k_rope] and values, as an MHA cache
        c->kv_dim = d.H * d.dq;
        c->v_dim = d.H * d.dv;
        c->k = ts_calloc(tokens * c->kv_dim, sizeof(float), "MLA naive cache keys");
        c->v = ts_calloc(tokens * c->v_dim, sizeof(float), "MLA naive cache values");
        c->bytes = tokens * (size_t)(c->kv_dim + c->v_dim) * sizeof(float);
        if (!c->k || !c->v) return -1;
    } else { // the latent only: normed c_kv and the roped shared key
        c->latent_dim = d.dc + d.dr;
        c->latent = ts_calloc(tokens * c->latent_dim, sizeof(float), "MLA latent cache");
        c->bytes = tokens * (size_t)c->latent_dim * sizeof(float);
        if (!c->latent) return -1;
    }
    //! [mla-cache]
    dec_bufs b;
    c->mla_scratch = ts_malloc(dec_layout(&b, NULL, cfg, c->B, c->max_T) * sizeof(float), "MLA decode scratch");
    return c->mla_scratch ? 0 : -1;
}

void mla_kvcache_free(ts_kvcache *c) {
    free(c->latent);
    free(c->mla_scratch);
    c->latent = NULL;
    c->mla_scratch = NULL;
}

void mla_prefill(ts_kvcache *kv, int l, int b, const ts_mla_acts *a, const ts_config *c, int n) {
    mla_dims d = dims_of(c);
    if (kv->mla_naive) {
        memcpy(ts_kvcache_row(kv->k, kv, kv->kv_dim, l, b, 0), a->k, (size_t)n * kv->kv_dim * sizeof(float));
        memcpy(ts_kvcache_row(kv->v, kv, kv->v_dim, l, b, 0), a->v, (size_t)n * kv->v_dim * sizeof(float));
        return;
    }
    for (int t = 0; t < n; t++) { // [normed c_kv; roped k_rope]
        float *e = ts_kvcache_latent_at(kv, l, b, t);
        memcpy(e, a->ckv + (size_t)t * d.dc, (size_t)d.dc * sizeof(float));
        memcpy(e + d.dc, a->kva + (size_t)t * (d.dc + d.dr) + d.dc, (size_t)d.dr * sizeof(float));
    }
}

//! [mla-absorbed]
void mla_absorbed_attention(const ts_config *cfg, const float *kv_b_proj, const ts_kvcache *c, int l, const float *q,
                            float *ctx, float *qcat, float *scores, float *olat, const int *seq, const int *pos,
                            int R) {
    int H = cfg->num_attention_heads, dn = cfg->qk_nope_head_dim, dr = cfg->qk_rope_head_dim;
    int dq = dn + dr, dv = cfg->v_head_dim, dc = cfg->kv_lora_rank, LAT = dc + dr;
    const float *wkv = kv_b_proj; // (H·(dn+dv), dc): per head W_UK (dn,dc), then W_UV (dv,dc)
    float scale = mla_softmax_scale(cfg);
    // absorb W_UK into the query: qcat[r][h][0:dc] = W_UK[h]ᵀ q_nope[r][h]   (R,dn)·(dn,dc) per head
    for (int h = 0; h < H; h++)
        ts_sgemm(0, 0, R, dc, dn, 1.0f, q + (size_t)h * dq, H * dq, wkv + (size_t)h * (dn + dv) * dc, dc, 0.0f,
                 qcat + (size_t)h * LAT, H * LAT);
    for (int r = 0; r < R; r++) // qcat[r][h][dc:] = q_rope[r][h]
        for (int h = 0; h < H; h++)
            memcpy(qcat + ((size_t)r * H + h) * LAT + dc, q + ((size_t)r * H + h) * dq + dn, (size_t)dr * sizeof(float));
    TS_OMP(parallel for schedule(static) if (R > 1))
    for (int r = 0; r < R; r++) {
        int n = pos[r] + 1;
        // this sequence's cache in layer l: n rows [c_kv; k_rope] of dc + dr floats
        const float *cache = ts_kvcache_latent_at(c, l, seq[r], 0);
        float *S = scores + (size_t)r * H * c->max_T; // (H, n), rows max_T apart
        // every head against the same latents: S (H,n) = scale · qcat[r] (H,dc+dr) · cacheᵀ
        ts_sgemm(0, 1, H, n, LAT, scale, qcat + (size_t)r * H * LAT, LAT, cache, LAT, 0.0f, S, c->max_T);
        for (int h = 0; h < H; h++) { // softmax over the n positions
            float *s = S + (size_t)h * c->max_T, mx = s[0], sum = 0.0f;
            for (int t = 1; t < n; t++) mx = s[t] > mx ? s[t] : mx;
            for (int t = 0; t < n; t++) sum += s[t] = expf(s[t] - mx);
            for (int t = 0; t < n; t++) s[t] /= sum;
        }
        // olat (H,dc) = P (H,n) · c_kv (n,dc): the attention output, still in the latent space
        ts_sgemm(0, 0, H, dc, n, 1.0f, S, c->max_T, cache, LAT, 0.0f, olat + (size_t)r * H * dc, dc);
    }
    // apply W_UV after the attention: ctx[r][h] = W_UV[h] olat[r][h]   (R,dc)·(dc,dv) per head
    for (int h = 0; h < H; h++)
        ts_sgemm(0, 1, R, dv, dc, 1.0f, olat + (size_t)h * dc, H * dc, wkv + ((size_t)h * (dn + dv) + dn) * dc, dc, 0.0f,
                 ctx + (size_t)h * dv, H * dv);
}
//! [mla-absorbed]

/* Naive attention for R rows over the full per-head key/value cache (what the
 * training forward computes, one query at a time). */
static void naive_attention(const ts_config *cfg, const ts_kvcache *c, const dec_bufs *bf, int l, const int *seq,
                            const int *pos, int R) {
    mla_dims d = dims_of(cfg);
    int H = d.H;
    float scale = mla_softmax_scale(cfg);
    TS_OMP_HEADS_IF(R * H > 1)
    for (int r = 0; r < R; r++)
        for (int h = 0; h < H; h++) {
            int n = pos[r] + 1;
            // K (n, dq) rows H·dq apart, V (n, dv) rows H·dv apart: head h of each cached position
            const float *K = ts_kvcache_row(c->k, c, c->kv_dim, l, seq[r], 0) + (size_t)h * d.dq;
            const float *V = ts_kvcache_row(c->v, c, c->v_dim, l, seq[r], 0) + (size_t)h * d.dv;
            float *S = bf->scores + ((size_t)r * H + h) * c->max_T;
            ts_sgemm(0, 1, 1, n, d.dq, scale, bf->q + ((size_t)r * H + h) * d.dq, d.dq, K, H * d.dq, 0.0f, S, n);
            ts_softmax_row(S, S, n);
            ts_sgemm(0, 0, 1, d.dv, n, 1.0f, S, n, V, H * d.dv, 0.0f, bf->ctx + ((size_t)r * H + h) * d.dv, d.dv);
        }
}

//! [mla-decode]
void mla_decode(float *y, const float *x, const ts_mla_weights *w, const ts_rope *rope, float *scratch,
                ts_kvcache *c, int l, const int *seq, const int *pos, int R, const ts_config *cfg) {
    mla_dims d = dims_of(cfg);
    int H = d.H, LAT = d.dc + d.dr;
    dec_bufs bf;
    dec_layout(&bf, scratch, cfg, c->B, c->max_T);
    // the new tokens' queries, as in the training forward (c_q only lives for this step)
    if (d.rq > 0) {
        matmul_forward(bf.cq, x, w->q_a_proj, NULL, R, d.C, d.rq);
        rmsnorm_forward(bf.cq_n, bf.rstd, bf.cq, w->q_a_layernorm, R, d.rq, d.rq, d.rq, cfg->rms_norm_eps);
        matmul_forward(bf.q, bf.cq_n, w->q_b_proj, NULL, R, d.rq, H * d.dq);
    } else {
        matmul_forward(bf.q, x, w->q_proj, NULL, R, d.C, H * d.dq);
    }
    rope_forward(bf.q + d.dn, pos, R, H, H * d.dq, d.dq, d.dr, rope->cos, rope->sin);
    // this token's latent: [rmsnorm(c_kv); rope(k_rope)]
    matmul_forward(bf.kva, x, w->kv_a_proj_with_mqa, NULL, R, d.C, LAT);
    rmsnorm_forward(bf.lat, bf.rstd, bf.kva, w->kv_a_layernorm, R, d.dc, LAT, LAT, cfg->rms_norm_eps);
    for (int r = 0; r < R; r++)
        memcpy(bf.lat + (size_t)r * LAT + d.dc, bf.kva + (size_t)r * LAT + d.dc, (size_t)d.dr * sizeof(float));
    rope_forward(bf.lat + d.dc, pos, R, 1, LAT, d.dr, d.dr, rope->cos, rope->sin);
    if (!c->mla_naive) {
        // absorbed: the cache gets the dc + dr floats of the latent, nothing else
        for (int r = 0; r < R; r++)
            memcpy(ts_kvcache_latent_at(c, l, seq[r], pos[r]), bf.lat + (size_t)r * LAT, (size_t)LAT * sizeof(float));
        mla_absorbed_attention(cfg, w->kv_b_proj, c, l, bf.q, bf.ctx, bf.qcat, bf.scores, bf.olat, seq, pos, R);
    } else {
        // naive: up-project to per-head keys and values and cache those, H·(dq + dv) floats
        // kvb (R, H·(dn+dv)) = c_kv · W_UKVᵀ, c_kv = lat[:, :dc] (rows dc+dr apart)
        ts_sgemm(0, 1, R, H * (d.dn + d.dv), d.dc, 1.0f, bf.lat, LAT, w->kv_b_proj, d.dc, 0.0f, bf.kvb,
                 H * (d.dn + d.dv));
        for (int r = 0; r < R; r++) {
            const float *src = bf.kvb + (size_t)r * H * (d.dn + d.dv);
            float *K = ts_kvcache_row(c->k, c, c->kv_dim, l, seq[r], pos[r]);
            float *V = ts_kvcache_row(c->v, c, c->v_dim, l, seq[r], pos[r]);
            for (int h = 0; h < H; h++) {
                memcpy(K + (size_t)h * d.dq, src + (size_t)h * (d.dn + d.dv), (size_t)d.dn * sizeof(float));
                memcpy(K + (size_t)h * d.dq + d.dn, bf.lat + (size_t)r * LAT + d.dc, (size_t)d.dr * sizeof(float));
                memcpy(V + (size_t)h * d.dv, src + (size_t)h * (d.dn + d.dv) + d.dn, (size_t)d.dv * sizeof(float));
            }
        }
        naive_attention(cfg, c, &bf, l, seq, pos, R);
    }
    matmul_forward(y, bf.ctx, w->o_proj, NULL, R, H * d.dv, d.C); // y (R,C) = ctx · W_Oᵀ
}
//! [mla-decode]

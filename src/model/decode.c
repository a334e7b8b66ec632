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

/* One block of a decode step over the R rows in c->x (sequence seq[r], position pos[r]):
 * appends each row's keys and values to layer @p cl of the cache. The main
 * layers and the MTP module's block (chapter 6) both run it. */
static void decode_block(ts_model *m, ts_kvcache *c, int cl, const ts_layer_weights *w, int moe, const int *seq,
                         const int *pos, int R) {
    const ts_config *cfg = &m->cfg;
    int C = cfg->hidden_size, F = cfg->intermediate_size;
    ts_mlp_acts mlp = {c->gate, c->up, c->hidden};
    ts_rope rope = ts_model_rope(m);
    rmsnorm_forward(c->ln, c->res, c->x, w->input_layernorm, R, C, C, C, cfg->rms_norm_eps);
    // appends to the cache, res = attention output
    switch (m->attn) {
    case TS_ATTN_MHA: mha_decode(c->res, c->ln, &w->attn, &rope, &c->step, c, cl, seq, pos, R, cfg); break;
    case TS_ATTN_GQA: gqa_decode(c->res, c->ln, &w->attn, &rope, &c->step, c, cl, seq, pos, R, cfg); break;
    case TS_ATTN_MLA: mla_decode(c->res, c->ln, &w->mla, &rope, c->mla_scratch, c, cl, seq, pos, R, cfg); break;
    }
    for (long i = 0; i < (long)R * C; i++) c->x[i] += c->res[i];
    rmsnorm_forward(c->ln, c->res, c->x, w->post_attention_layernorm, R, C, C, C, cfg->rms_norm_eps);
    if (moe) moe_forward(c->res, c->moe, c->ln, &w->moe, cfg, R, 1); // chapter 5
    else mlp_forward(c->res, &mlp, c->ln, &w->mlp, R, C, F);
    for (long i = 0; i < (long)R * C; i++) c->x[i] += c->res[i];
}

/* The main model over the R embedded rows in c->x: logits (R,V) in c->logits; c->x ends as the last hidden state. */
static void decode_main(ts_model *m, ts_kvcache *c, const int *seq, const int *pos, int R) {
    const ts_config *cfg = &m->cfg;
    int C = cfg->hidden_size, V = cfg->vocab_size;
    for (int l = 0; l < cfg->num_hidden_layers; l++)
        decode_block(m, c, l, &m->w.layers[l], ts_moe_is_layer(cfg, l), seq, pos, R);
    rmsnorm_forward(c->ln, c->res, c->x, m->w.norm, R, C, C, C, cfg->rms_norm_eps);
    matmul_forward(c->logits, c->ln, m->w.lm_head, NULL, R, C, V);
}

ts_status ts_model_decode(ts_model *m, ts_kvcache *c, const int *tokens, const int *active, float *logits) {
    const ts_config *cfg = &m->cfg;
    int C = cfg->hidden_size, V = cfg->vocab_size;
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
    decode_main(m, c, seq, pos, R);
    for (int r = 0; r < R; r++) {
        c->len[seq[r]]++;
        memcpy(logits + (size_t)seq[r] * V, c->logits + (size_t)r * V, V * sizeof(float));
    }
    return TS_OK;
}

/* Rows 0..n−1 of a step of sequence b: positions len[b], len[b]+1, ... */
static ts_status seq_rows(ts_kvcache *c, int b, const int *tokens, int n, int V, const char *what) {
    if (b < 0 || b >= c->B) return ts_fail(TS_ERR_RANGE, "%s: sequence %d outside the cache's %d", what, b, c->B);
    if (n < 1 || n > c->B)
        return ts_fail(TS_ERR_RANGE, "%s: %d positions in one step; the cache has scratch rows for 1..%d", what, n, c->B);
    if (c->len[b] + n > c->max_T)
        return ts_fail(TS_ERR_RANGE, "%s: sequence %d has room for %d more positions, not %d", what, b,
                       c->max_T - c->len[b], n);
    for (int r = 0; r < n; r++) {
        if (tokens[r] < 0 || tokens[r] >= V)
            return ts_fail(TS_ERR_RANGE, "%s: token %d is outside the vocabulary (0..%d)", what, tokens[r], V - 1);
        c->rows[r] = b;
        c->rows[c->B + r] = c->len[b] + r;
    }
    return TS_OK;
}

//! [decode-seq]
ts_status ts_model_decode_seq(ts_model *m, ts_kvcache *c, int b, const int *tokens, int n, float *logits,
                              float *hidden) {
    int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    ts_status st = seq_rows(c, b, tokens, n, V, "decode");
    if (st) return st;
    for (int r = 0; r < n; r++) memcpy(c->x + (size_t)r * C, m->w.embed_tokens + (size_t)tokens[r] * C, C * sizeof(float));
    // all n rows append their keys and values before any attends (mha_decode, mla_decode), so row r
    // sees positions 0..len+r: the causal mask of a training forward, over the cache
    decode_main(m, c, c->rows, c->rows + c->B, n);
    c->len[b] += n;
    memcpy(logits, c->logits, (size_t)n * V * sizeof(float));
    if (hidden) memcpy(hidden, c->x, (size_t)n * C * sizeof(float));
    return TS_OK;
}
//! [decode-seq]

ts_status ts_kvcache_truncate(ts_kvcache *c, int b, int len) {
    if (b < 0 || b >= c->B) return ts_fail(TS_ERR_RANGE, "truncate: sequence %d outside the cache's %d", b, c->B);
    if (len < 0 || len > c->len[b])
        return ts_fail(TS_ERR_RANGE, "truncate: sequence %d holds %d positions, cannot keep %d", b, c->len[b], len);
    c->len[b] = len; // the rows beyond are overwritten by the next step that reaches them
    return TS_OK;
}

/* ------------------------------------------------------------------ */
/* Multi-token prediction at inference (chapter 6)                     */
/* ------------------------------------------------------------------ */

ts_status ts_mtp_cache_create(ts_kvcache *cache, const ts_model *m, int B, int max_T) {
    if (m->cfg.num_nextn_predict_layers < 1)
        return ts_fail(TS_ERR_ARG, "the model has no MTP module (num_nextn_predict_layers = 0)");
    ts_config one = m->cfg; // the cache of one block: module 1's
    one.num_hidden_layers = 1;
    return ts_kvcache_create_for(cache, &one, B, max_T, TS_KV_ABSORBED);
}

ts_status ts_mtp_prefill(ts_model *m, ts_kvcache *cache, int b, int n) {
    if (b < 0 || b >= cache->B) return ts_fail(TS_ERR_RANGE, "MTP prefill: sequence %d outside the cache's %d", b, cache->B);
    if (m->cur_B != 1 || m->cur_T != n) return ts_fail(TS_ERR_ARG, "MTP prefill: the last forward was not a (1, %d) prefill", n);
    cache->len[b] = 0;
    if (n < 2) return TS_OK; // module position i needs t_{i+1}: none yet
    ts_status st = ts_mtp_forward(m, 1);
    if (st) return st;
    const ts_layer_acts *a = &m->acts[m->cfg.num_hidden_layers];
    if (m->attn == TS_ATTN_MLA) mla_prefill(cache, 0, b, &a->mla, &m->cfg, n - 1);
    else mha_prefill(cache, 0, b, &a->attn, n - 1);
    cache->len[b] = n - 1;
    return TS_OK;
}

//! [mtp-draft]
ts_status ts_mtp_decode(ts_model *m, ts_kvcache *c, int b, const float *h, const int *tokens, int n, float *cat,
                        float *logits) {
    const ts_config *cfg = &m->cfg;
    int C = cfg->hidden_size, V = cfg->vocab_size, l = cfg->num_hidden_layers;
    if (cfg->num_nextn_predict_layers < 1) return ts_fail(TS_ERR_ARG, "MTP decode: the model has no MTP module");
    ts_status st = seq_rows(c, b, tokens, n, V, "MTP decode");
    if (st) return st;
    const ts_mtp_weights *w = &m->w.mtp[0];
    // x = M_1·[hnorm(h); enorm(Emb(t))], as the training forward computes it
    for (int r = 0; r < n; r++) memcpy(c->ln + (size_t)r * C, m->w.embed_tokens + (size_t)tokens[r] * C, C * sizeof(float));
    float *rstd = c->res; // (n) scratch for both norms' 1/rms
    mtp_combine_forward(c->x, cat, rstd, rstd, h, c->ln, w, n, C, cfg->rms_norm_eps);
    decode_block(m, c, 0, &m->w.layers[l], ts_moe_is_layer(cfg, l), c->rows, c->rows + c->B, n);
    rmsnorm_forward(c->ln, c->res, c->x, w->head_norm, n, C, C, C, cfg->rms_norm_eps);
    matmul_forward(logits, c->ln, m->w.lm_head, NULL, n, C, V);
    c->len[b] += n;
    return TS_OK;
}
//! [mtp-draft]

static int argmax(const float *x, int n) { // ts_sample's greedy rule: the first largest
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static ts_status check_generation(const ts_model *m, const int *prompt, int n, int max_new) {
    if (n < 1 || max_new < 1 || n > m->cfg.max_position_embeddings - max_new)
        return ts_fail(TS_ERR_RANGE, "generate: prompt of %d tokens + %d new must fit max_position_embeddings %d", n,
                       max_new, m->cfg.max_position_embeddings);
    (void)prompt;
    return TS_OK;
}

ts_status ts_generate_greedy(ts_model *m, const int *prompt, int n, int max_new, ts_stop_fn stop, void *stop_ctx,
                             int *out, int *n_out, ts_spec_stats *stats) {
    ts_spec_stats s = {0, 0, 0, 0};
    *n_out = 0;
    ts_status st = check_generation(m, prompt, n, max_new);
    if (st) return st;
    ts_kvcache kc;
    float *logits = malloc((size_t)m->cfg.vocab_size * sizeof(float));
    if (!logits) return ts_fail(TS_ERR_NOMEM, "generate: out of memory");
    if ((st = ts_kvcache_create(&kc, m, 1, n + max_new))) {
        free(logits);
        return st;
    }
    st = ts_model_prefill(m, &kc, 0, prompt, n, logits);
    while (!st) {
        int t = argmax(logits, m->cfg.vocab_size);
        if (stop && stop(t, stop_ctx)) break;
        out[s.tokens++] = t;
        if (s.tokens == max_new) break;
        st = ts_model_decode(m, &kc, &t, NULL, logits);
        s.main_passes++;
    }
    *n_out = (int)s.tokens;
    if (stats) *stats = s;
    ts_kvcache_free(&kc);
    free(logits);
    return st;
}

ts_status ts_generate_speculative(ts_model *m, const int *prompt, int n, int max_new, ts_stop_fn stop, void *stop_ctx,
                                  int *out, int *n_out, ts_spec_stats *stats) {
    const ts_config *cfg = &m->cfg;
    int C = cfg->hidden_size, V = cfg->vocab_size;
    ts_spec_stats s = {0, 0, 0, 0};
    *n_out = 0;
    if (cfg->num_nextn_predict_layers < 1)
        return ts_fail(TS_ERR_ARG, "speculative decoding needs an MTP module (num_nextn_predict_layers >= 1)");
    ts_status st = check_generation(m, prompt, n, max_new);
    if (st) return st;
    int max_T = n + max_new + 1 <= cfg->max_position_embeddings ? n + max_new + 1 : n + max_new;
    /* Caches of two sequences: the verify step runs two rows of sequence 0, and a
     * cache has decode scratch for as many rows as sequences. */
    ts_kvcache kc, mc;
    memset(&kc, 0, sizeof kc);
    memset(&mc, 0, sizeof mc);
    float *buf = malloc(((size_t)6 * V + (size_t)8 * C) * sizeof(float));
    if (!buf) return ts_fail(TS_ERR_NOMEM, "generate: out of memory");
    float *logits = buf, *mlog = logits + 2 * V, *hid = mlog + 2 * V, *hid2 = hid + 2 * C, *cat = hid2 + 2 * C;
    if ((st = ts_kvcache_create(&kc, m, 2, max_T)) || (st = ts_mtp_cache_create(&mc, m, 2, max_T))) goto done;
    if ((st = ts_model_prefill(m, &kc, 0, prompt, n, logits))) goto done;
    memcpy(hid, m->hidden + (size_t)(n - 1) * C, (size_t)C * sizeof(float)); // h⁰ of the last prompt token
    if ((st = ts_mtp_prefill(m, &mc, 0, n))) goto done;
    int x = argmax(logits, V), htok[2], nh = 1; // x: chosen, not yet in the main cache
    if (stop && stop(x, stop_ctx)) goto done;
    out[s.tokens++] = x;
    htok[0] = x;
    //! [speculative-step]
    while (s.tokens < max_new) {
        int p = kc.len[0];
        if (p + 2 > kc.max_T) { // no room for a draft: one plain step
            if ((st = ts_model_decode_seq(m, &kc, 0, &x, 1, logits, NULL))) break;
            s.main_passes++;
            x = argmax(logits, V);
            if (stop && stop(x, stop_ctx)) break;
            out[s.tokens++] = x;
            continue;
        }
        // draft: module position p−1 reads h⁰_{p−1} and x = t_p, and guesses t_{p+1}
        if ((st = ts_mtp_decode(m, &mc, 0, hid, htok, nh, cat, mlog))) break;
        int draft = argmax(mlog + (size_t)(nh - 1) * V, V);
        // verify: the main model runs t_p and the draft at positions p and p+1 in one step
        int two[2] = {x, draft};
        if ((st = ts_model_decode_seq(m, &kc, 0, two, 2, logits, hid2))) break;
        s.main_passes++;
        s.drafted++;
        int y = argmax(logits, V); // what greedy decoding picks for t_{p+1}
        if (y != draft) {          // rejected: keep position p, drop the draft's row p+1
            if ((st = ts_kvcache_truncate(&kc, 0, p + 1))) break;
            if (stop && stop(y, stop_ctx)) break;
            out[s.tokens++] = y;
            memcpy(hid, hid2, (size_t)C * sizeof(float));
            htok[0] = x = y;
            nh = 1;
            continue;
        }
        s.accepted++; // accepted: t_{p+1} = draft, and position p+1's logits give t_{p+2} for free
        if (stop && stop(y, stop_ctx)) break;
        out[s.tokens++] = y;
        if (s.tokens == max_new) break;
        int z = argmax(logits + V, V);
        if (stop && stop(z, stop_ctx)) break;
        out[s.tokens++] = z;
        memcpy(hid, hid2, (size_t)2 * C * sizeof(float)); // the module catches up on positions p and p+1
        htok[0] = y;
        htok[1] = x = z;
        nh = 2;
    }
    //! [speculative-step]
done:
    *n_out = (int)s.tokens;
    if (stats) *stats = s;
    ts_kvcache_free(&kc);
    ts_kvcache_free(&mc);
    free(buf);
    return st;
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

/* Sorts pi into by_prob_desc()'s order (descending p, ties by lower id), the very order qsort
 * gives, since that comparator is a total order; but by least-significant-digit radix sort on
 * p's bits, 8 bits a pass, several times faster than qsort's calls through a function pointer
 * for a vocabulary of a few hundred (sampling spent nearly half of evaluation in qsort).
 * Non-negative doubles order like their bit patterns, so sorting ~bits ascending is sorting p
 * descending; each pass is stable and pi arrives in id order, so ties keep lower ids first.
 * A NaN (no order) falls back to qsort. `tmp` holds V more. */
static void sort_by_prob_desc(prob_id *pi, prob_id *tmp, int V) {
    for (int i = 0; i < V; i++)
        if (!(pi[i].p >= 0)) {
            qsort(pi, (size_t)V, sizeof *pi, by_prob_desc);
            return;
        }
    prob_id *src = pi, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (int i = 0; i < V; i++) {
            uint64_t k;
            memcpy(&k, &src[i].p, sizeof k);
            count[((~k >> shift) & 0xFF) + 1]++;
        }
        int same = 0;  // a pass where every key has the same byte moves nothing: skip it
        for (int b = 1; b <= 256; b++)
            if (count[b] == (size_t)V) same = 1;
        if (same) continue;
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (int i = 0; i < V; i++) {
            uint64_t k;
            memcpy(&k, &src[i].p, sizeof k);
            dst[count[(~k >> shift) & 0xFF]++] = src[i];
        }
        prob_id *t = src;
        src = dst;
        dst = t;
    }
    if (src != pi) memcpy(pi, src, (size_t)V * sizeof *pi);
}

//! [sample]
int ts_sample(const float *logits, int V, const ts_sampler *s, ts_rng *rng) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temperature <= 0) return best; // greedy
    prob_id *pi = malloc(2 * (size_t)V * sizeof *pi);
    if (!pi) return best;
    double sum = 0;
    for (int i = 0; i < V; i++) { // softmax(logits / temperature)
        pi[i].p = exp(((double)logits[i] - logits[best]) / s->temperature);
        pi[i].id = i;
        sum += pi[i].p;
    }
    sort_by_prob_desc(pi, pi + V, V); // descending p, ties by lower id (qsort's order, faster)
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

/**
 * @file mtp.c
 * @brief Multi-token prediction modules (chapter 6): parameters, forward,
 *        backward, and module 1's decode step for self-speculative decoding.
 *
 * Module k runs over the first T−k positions of each sequence: position i
 * reads the previous depth's hidden state at i and the token t_{i+k}, which
 * the window holds for i ≤ T−1−k, and predicts t_{i+k+1}, the main model's
 * target at position i+k. Its block is an ordinary block of the model
 * (ts_block_forward()), run over B sequences of T−k tokens.
 */
#include "model/mtp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "model/gqa.h"
#include "model/model.h"

static int add(ts_params *p, int no_decay, int rows, int cols, const char *fmt, int l) {
    char name[TS_NAME_MAX];
    snprintf(name, sizeof name, fmt, l);
    int shape[2] = {rows, cols};
    return ts_params_add(p, name, cols ? 2 : 1, shape, no_decay);
}

int mtp_register(ts_params *p, const ts_config *c) {
    int C = c->hidden_size, L = c->num_hidden_layers, bad = 0;
    for (int k = 1; k <= c->num_nextn_predict_layers && !bad; k++) {
        int l = L + k - 1;
        bad |= add(p, 1, C, 0, "model.layers.%d.enorm.weight", l) < 0;
        bad |= add(p, 1, C, 0, "model.layers.%d.hnorm.weight", l) < 0;
        bad |= add(p, 0, C, 2 * C, "model.layers.%d.eh_proj.weight", l) < 0;
        bad |= ts_block_register(p, c, l) < 0; // the block: the main layers' registration, at index L+k−1
        bad |= add(p, 1, C, 0, "model.layers.%d.shared_head.norm.weight", l) < 0;
    }
    return bad ? -1 : 0;
}

static float *find(const ts_params *p, float *base, const char *fmt, int l) {
    char name[TS_NAME_MAX];
    snprintf(name, sizeof name, fmt, l);
    int i = ts_params_find(p, name);
    return i >= 0 ? base + p->params[i].offset : NULL;
}

void mtp_bind(ts_mtp_weights *w, const ts_params *p, float *base, const ts_config *c) {
    for (int k = 1; k <= c->num_nextn_predict_layers; k++) {
        int l = c->num_hidden_layers + k - 1;
        w[k - 1].enorm = find(p, base, "model.layers.%d.enorm.weight", l);
        w[k - 1].hnorm = find(p, base, "model.layers.%d.hnorm.weight", l);
        w[k - 1].eh_proj = find(p, base, "model.layers.%d.eh_proj.weight", l);
        w[k - 1].head_norm = find(p, base, "model.layers.%d.shared_head.norm.weight", l);
    }
}

void mtp_carve(ts_mtp_acts *a, float **scratch, ts_arena *ar, const ts_config *c, int frozen, int B, int T) {
    size_t N = (size_t)B * T, C = c->hidden_size, V = c->vocab_size;
    for (int k = 0; k < c->num_nextn_predict_layers; k++) { // sized for T positions; depth k uses T−k
        a[k].tokens = ts_arena_ints(ar, N);
        a[k].pos = ts_arena_ints(ar, N);
        a[k].h_prev = ts_arena_floats(ar, N * C);
        a[k].emb = ts_arena_floats(ar, N * C);
        a[k].hn_rstd = ts_arena_floats(ar, N);
        a[k].en_rstd = ts_arena_floats(ar, N);
        a[k].cat = ts_arena_floats(ar, 2 * N * C);
        a[k].x = ts_arena_floats(ar, N * C);
        a[k].lnf = ts_arena_floats(ar, N * C);
        a[k].lnf_rstd = ts_arena_floats(ar, N);
        a[k].logits = ts_arena_floats(ar, N * V);
        a[k].d_logits = frozen ? NULL : ts_arena_floats(ar, N * V);
    }
    *scratch = frozen ? NULL : ts_arena_floats(ar, 5 * N * C); // carry, d_cat (2NC), d_prev, d_emb
}

void ts_mtp_targets(int *out, const int *targets, int B, int T, int k) {
    int Tk = ts_mtp_len(T, k);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Tk; i++) out[b * Tk + i] = targets[b * T + i + k];
}

long long ts_mtp_count_params(const ts_config *c) {
    ts_params p;
    ts_params_init(&p);
    ts_config one = *c;
    long long n = 0;
    if (mtp_register(&p, &one) == 0)
        for (int i = 0; i < p.count; i++) n += (long long)p.params[i].numel;
    ts_params_free(&p);
    return n;
}

//! [mtp-combine]
void mtp_combine_forward(float *x, float *cat, float *hn_rstd, float *en_rstd, const float *h, const float *e,
                         const ts_mtp_weights *w, int N, int C, float eps) {
    // cat (N,2C) = [hnorm(h) ; enorm(e)]: each norm writes its half of the row (row stride 2C)
    rmsnorm_forward(cat, hn_rstd, h, w->hnorm, N, C, C, 2 * C, eps);
    rmsnorm_forward(cat + C, en_rstd, e, w->enorm, N, C, C, 2 * C, eps);
    matmul_forward(x, cat, w->eh_proj, NULL, N, 2 * C, C); // x (N,C) = cat · M_kᵀ
}
//! [mtp-combine]

void mtp_combine_backward(float *dh, float *de, const ts_mtp_weights *dw, float *d_cat, const float *dx,
                          const float *cat, const float *hn_rstd, const float *en_rstd, const float *h, const float *e,
                          const ts_mtp_weights *w, int N, int C) {
    // x = cat · M_kᵀ
    memset(d_cat, 0, (size_t)N * 2 * C * sizeof(float));
    matmul_backward(d_cat, dw->eh_proj, NULL, dx, cat, w->eh_proj, N, 2 * C, C);
    // cat[:, C:] = enorm(e)
    rmsnorm_backward(de, dw->enorm, d_cat + C, e, w->enorm, en_rstd, N, C, C, 2 * C);
    // cat[:, :C] = hnorm(h)
    rmsnorm_backward(dh, dw->hnorm, d_cat, h, w->hnorm, hn_rstd, N, C, C, 2 * C);
}

//! [mtp-forward]
/* Module k: h' = M_k·[hnorm(h^(k−1)); enorm(Emb(t_{i+k}))], h^k = TRM_k(h'), logits = lm_head·norm(h^k). */
static void mtp_forward_depth(ts_model *m, int k) {
    const ts_config *c = &m->cfg;
    int B = m->cur_B, T = m->cur_T, Tk = ts_mtp_len(T, k), N = B * Tk;
    int C = c->hidden_size, V = c->vocab_size, l = c->num_hidden_layers + k - 1;
    ts_mtp_acts *a = &m->mtp_acts[k - 1];
    const ts_mtp_weights *w = &m->w.mtp[k - 1];
    // h^(k−1): the main model's last hidden state, or the previous module's block output (T−k+1 positions)
    const float *prev = k == 1 ? m->hidden : m->acts[l - 1].out;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Tk; i++) {
            int r = b * Tk + i;
            a->tokens[r] = m->tokens[b * T + i + k]; // t_{i+k}
            a->pos[r] = i;                           // the module's own RoPE positions
            memcpy(a->h_prev + (size_t)r * C, prev + ((size_t)b * (Tk + 1) + i) * C, (size_t)C * sizeof(float));
        }
    embedding_forward(a->emb, a->tokens, m->w.embed_tokens, N, C); // the shared embedding
    mtp_combine_forward(a->x, a->cat, a->hn_rstd, a->en_rstd, a->h_prev, a->emb, w, N, C, c->rms_norm_eps);
    int moe = ts_moe_is_layer(c, l);
    ts_block_forward(m, &m->w.layers[l], &m->acts[l], moe, a->x, a->pos, B, Tk); // h^k = acts[l].out
    rmsnorm_forward(a->lnf, a->lnf_rstd, m->acts[l].out, w->head_norm, N, C, C, C, c->rms_norm_eps);
    matmul_forward(a->logits, a->lnf, m->w.lm_head, NULL, N, C, V); // the shared output head
    if (moe) m->mtp_aux_loss += (float)m->acts[l].moe.aux_loss;
}
//! [mtp-forward]

ts_status ts_mtp_forward(ts_model *m, int depths) {
    int D = m->cfg.num_nextn_predict_layers;
    if (depths < 1 || depths > D)
        return ts_fail(TS_ERR_ARG, "MTP forward of %d modules: the model has num_nextn_predict_layers = %d", depths, D);
    if (m->cur_B <= 0 || m->cur_T <= 0) return ts_fail(TS_ERR_ARG, "MTP forward before the main model's forward");
    m->mtp_aux_loss = 0.0f;
    for (int k = 1; k <= depths && ts_mtp_len(m->cur_T, k) > 0; k++) mtp_forward_depth(m, k);
    m->mtp_depths = depths;
    return TS_OK;
}

/* Backward of mtp_forward_depth(). On entry carry = dL/dh^k from depth k+1 ((B, T−k) rows);
 * on exit d_prev = dL/dh^(k−1) at positions 0..T−1−k. */
static void mtp_backward_depth(ts_model *m, int k, const float *d_logits, const float *carry, float *d_cat,
                               float *d_prev, float *d_emb) {
    const ts_config *c = &m->cfg;
    int B = m->cur_B, Tk = ts_mtp_len(m->cur_T, k), N = B * Tk;
    int C = c->hidden_size, V = c->vocab_size, l = c->num_hidden_layers + k - 1;
    size_t NC = (size_t)N * C;
    ts_mtp_acts *a = &m->mtp_acts[k - 1];
    const ts_mtp_weights *w = &m->w.mtp[k - 1];
    ts_mtp_weights *g = &m->g.mtp[k - 1];
    memcpy(m->d_res, carry, NC * sizeof(float));
    if (d_logits) {
        // logits = lnf · lm_headᵀ
        memset(m->d_ln, 0, NC * sizeof(float));
        matmul_backward(m->d_ln, m->g.lm_head, NULL, d_logits, a->lnf, m->w.lm_head, N, C, V);
        // lnf = shared_head.norm(h^k): joins what depth k+1 sent back
        rmsnorm_backward(m->d_res, g->head_norm, m->d_ln, m->acts[l].out, w->head_norm, a->lnf_rstd, N, C, C, C);
    }
    // h^k = TRM_k(x): d_res becomes dL/dx
    ts_block_backward(m, &m->w.layers[l], &m->g.layers[l], &m->acts[l], ts_moe_is_layer(c, l), a->x, a->pos, B, Tk);
    // x = M_k·[hnorm(h_prev); enorm(emb)]: into h_prev and, through emb = Emb(t_{i+k}), the shared embedding
    memset(d_emb, 0, NC * sizeof(float));
    memset(d_prev, 0, NC * sizeof(float));
    mtp_combine_backward(d_prev, d_emb, g, d_cat, m->d_res, a->cat, a->hn_rstd, a->en_rstd, a->h_prev, a->emb, w, N,
                         C);
    embedding_backward(m->g.embed_tokens, d_emb, a->tokens, N, C);
}

ts_status ts_mtp_backward(ts_model *m, float *const *d_logits, float *d_hidden, float aux_weight) {
    const ts_config *c = &m->cfg;
    int D = c->num_nextn_predict_layers;
    if (m->mode == TS_MODEL_FROZEN)
        return ts_fail(TS_ERR_ARG, "MTP backward on a frozen model: it has no gradients (create it trainable)");
    if (D < 1 || m->mtp_depths != D)
        return ts_fail(TS_ERR_ARG, "MTP backward needs a forward of all %d modules since the last main forward", D);
    if (!d_hidden) return ts_fail(TS_ERR_ARG, "MTP backward: d_hidden is required (the main model's gradient)");
    if (!isfinite(aux_weight) || aux_weight < 0.0f)
        return ts_fail(TS_ERR_ARG, "aux_weight %g: expected a finite weight >= 0", (double)aux_weight);
    int B = m->cur_B, T = m->cur_T, C = c->hidden_size;
    size_t NC = (size_t)B * T * C;
    float *carry = m->mtp_scratch, *d_cat = carry + NC, *d_prev = d_cat + 2 * NC, *d_emb = d_prev + NC;
    m->aux_weight = aux_weight;
    memset(carry, 0, NC * sizeof(float)); // nothing comes back from beyond depth D
    for (int k = D; k >= 1; k--) {
        int Tk = ts_mtp_len(T, k);
        if (Tk == 0) continue; // no positions at this depth: carry stays 0
        mtp_backward_depth(m, k, d_logits ? d_logits[k - 1] : NULL, carry, d_cat, d_prev, d_emb);
        // h^(k−1) has T−k+1 positions per sequence; this depth read the first T−k
        for (int b = 0; b < B; b++)
            for (int i = 0; i < Tk; i++) {
                const float *src = d_prev + ((size_t)b * Tk + i) * C;
                if (k == 1) {
                    float *dst = d_hidden + ((size_t)b * T + i) * C;
                    for (int j = 0; j < C; j++) dst[j] += src[j];
                } else {
                    memcpy(carry + ((size_t)b * (Tk + 1) + i) * C, src, (size_t)C * sizeof(float));
                }
            }
        if (k > 1)
            for (int b = 0; b < B; b++) memset(carry + ((size_t)b * (Tk + 1) + Tk) * C, 0, (size_t)C * sizeof(float));
    }
    return TS_OK;
}

/**
 * @file moe.c
 * @brief DeepSeekMoE forward and backward: routing, dispatch by expert, the
 *        auxiliary loss and the auxiliary-loss-free bias update.
 *
 * The forward runs in four steps: the shared experts on every token; the
 * router (scores, top-K selection, weights); the dispatch (the (token, slot)
 * pairs sorted by expert, each expert's tokens gathered and run as one MLP);
 * the combine (each token adds its K weighted expert outputs, in slot order).
 * Every reduction runs in a fixed order, so the bits do not depend on threads.
 */
#include "model/moe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "model/model.h"

int ts_moe_is_layer(const ts_config *c, int l) { return c->n_routed_experts > 0 && l >= c->first_k_dense_replace; }

int moe_bias_required(const ts_config *c) { return strcmp(c->topk_method, "noaux_tc") == 0; }

static int is_sigmoid(const ts_config *c) { return strcmp(c->scoring_func, "sigmoid") == 0; }

/* Intermediate size of the fused shared experts. */
static int shared_size(const ts_config *c) { return c->n_shared_experts * c->moe_intermediate_size; }

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

static int add_tensor(ts_params *p, int rows, int cols, int no_decay, const char *fmt, int l, int e) {
    char name[TS_NAME_MAX];
    snprintf(name, sizeof name, fmt, l, e);
    int shape[2] = {rows, cols};
    return ts_params_add(p, name, cols > 0 ? 2 : 1, shape, no_decay);
}

int moe_register(ts_params *p, const ts_config *c, int l) {
    int C = c->hidden_size, E = c->n_routed_experts, Fe = c->moe_intermediate_size, Fs = shared_size(c);
    int bad = 0;
    if (E > 0) {
        bad |= add_tensor(p, E, C, 0, "model.layers.%d.mlp.gate.weight", l, 0) < 0;
        bad |= add_tensor(p, E, 0, 1, "model.layers.%d.mlp.gate.e_score_correction_bias", l, 0) < 0;
    }
    for (int e = 0; e < E && !bad; e++) {
        bad |= add_tensor(p, Fe, C, 0, "model.layers.%d.mlp.experts.%d.gate_proj.weight", l, e) < 0;
        bad |= add_tensor(p, Fe, C, 0, "model.layers.%d.mlp.experts.%d.up_proj.weight", l, e) < 0;
        bad |= add_tensor(p, C, Fe, 0, "model.layers.%d.mlp.experts.%d.down_proj.weight", l, e) < 0;
    }
    if (Fs > 0 && !bad) {
        bad |= add_tensor(p, Fs, C, 0, "model.layers.%d.mlp.shared_experts.gate_proj.weight", l, 0) < 0;
        bad |= add_tensor(p, Fs, C, 0, "model.layers.%d.mlp.shared_experts.up_proj.weight", l, 0) < 0;
        bad |= add_tensor(p, C, Fs, 0, "model.layers.%d.mlp.shared_experts.down_proj.weight", l, 0) < 0;
    }
    return bad ? -1 : 0;
}

void moe_params(const ts_config *c, long long *total, long long *active) {
    long long expert = mlp_params(c->hidden_size, c->moe_intermediate_size);
    long long router = (long long)c->n_routed_experts * (c->hidden_size + 1); /* W_g and the selection bias */
    *total = router + (long long)(c->n_routed_experts + c->n_shared_experts) * expert;
    *active = router + (long long)(c->num_experts_per_tok + c->n_shared_experts) * expert;
}

static float *find(const ts_params *p, float *base, const char *fmt, int l, int e) {
    char name[TS_NAME_MAX];
    snprintf(name, sizeof name, fmt, l, e);
    int idx = ts_params_find(p, name);
    return idx >= 0 ? base + p->params[idx].offset : NULL;
}

void moe_bind(ts_moe_weights *w, const ts_params *p, float *base, const ts_config *c, int l) {
    w->gate = find(p, base, "model.layers.%d.mlp.gate.weight", l, 0);
    w->bias = find(p, base, "model.layers.%d.mlp.gate.e_score_correction_bias", l, 0);
    for (int e = 0; e < c->n_routed_experts; e++) {
        w->experts[e].gate_proj = find(p, base, "model.layers.%d.mlp.experts.%d.gate_proj.weight", l, e);
        w->experts[e].up_proj = find(p, base, "model.layers.%d.mlp.experts.%d.up_proj.weight", l, e);
        w->experts[e].down_proj = find(p, base, "model.layers.%d.mlp.experts.%d.down_proj.weight", l, e);
    }
    w->shared.gate_proj = find(p, base, "model.layers.%d.mlp.shared_experts.gate_proj.weight", l, 0);
    w->shared.up_proj = find(p, base, "model.layers.%d.mlp.shared_experts.up_proj.weight", l, 0);
    w->shared.down_proj = find(p, base, "model.layers.%d.mlp.shared_experts.down_proj.weight", l, 0);
}

/* ------------------------------------------------------------------ */
/* Activations                                                         */
/* ------------------------------------------------------------------ */

void moe_carve_acts(ts_moe_acts *a, ts_arena *ar, const ts_config *c, int B, int T) {
    size_t N = (size_t)B * T, C = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    size_t Fe = c->moe_intermediate_size, Fs = shared_size(c), NK = N * K;
    memset(a, 0, sizeof *a);
    if (Fs > 0) {
        a->shared.gate = ts_arena_floats(ar, N * Fs);
        a->shared.up = ts_arena_floats(ar, N * Fs);
        a->shared.hidden = ts_arena_floats(ar, N * Fs);
    }
    if (E == 0) return;
    a->logits = ts_arena_floats(ar, N * E);
    a->scores = ts_arena_floats(ar, N * E);
    a->topk_idx = ts_arena_ints(ar, NK);
    a->topk_w = ts_arena_floats(ar, NK);
    a->counts = ts_arena_ints(ar, E);
    a->offsets = ts_arena_ints(ar, E + 1);
    a->rows = ts_arena_ints(ar, NK);
    a->slot_row = ts_arena_ints(ar, NK);
    a->xin = ts_arena_floats(ar, NK * C);
    a->expert.gate = ts_arena_floats(ar, NK * Fe);
    a->expert.up = ts_arena_floats(ar, NK * Fe);
    a->expert.hidden = ts_arena_floats(ar, NK * Fe);
    a->eout = ts_arena_floats(ar, NK * C);
    a->f = ts_arena_floats(ar, (size_t)B * E);
    a->work = ts_arena_floats(ar, E + (size_t)c->n_group);
}

void moe_carve_scratch(ts_moe_scratch *s, ts_arena *ar, const ts_config *c, int N) {
    size_t n = (size_t)N, C = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    size_t Fe = c->moe_intermediate_size, Fs = shared_size(c), F = Fe > Fs ? Fe : Fs;
    memset(s, 0, sizeof *s);
    s->d_mlp.gate = ts_arena_floats(ar, n * F);
    s->d_mlp.up = ts_arena_floats(ar, n * F);
    s->d_mlp.hidden = ts_arena_floats(ar, n * F);
    if (E == 0) return;
    s->d_eout = ts_arena_floats(ar, n * K * C);
    s->d_xin = ts_arena_floats(ar, n * K * C);
    s->d_w = ts_arena_floats(ar, n * K);
    s->d_scores = ts_arena_floats(ar, n * E);
    s->d_logits = ts_arena_floats(ar, n * E);
}

/* ------------------------------------------------------------------ */
/* Routing                                                             */
/* ------------------------------------------------------------------ */

/* Index of the largest of v[0..n), the lowest index among ties. */
static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

//! [moe-route]
void moe_route_token(int *idx, float *weight, const float *s, const float *bias, const ts_config *c, float *work) {
    int E = c->n_routed_experts, K = c->num_experts_per_tok, G = c->n_group, per = E / G;
    float *biased = work, *group = work + E;
    for (int e = 0; e < E; e++) biased[e] = s[e] + (bias ? bias[e] : 0.0f); // selection uses s + b
    if (G > 1) {
        // Group-limited routing: a group's score is the sum of its two best biased scores.
        for (int g = 0; g < G; g++) {
            float best = -INFINITY, second = -INFINITY;
            for (int e = g * per; e < (g + 1) * per; e++) {
                if (biased[e] > best) {
                    second = best;
                    best = biased[e];
                } else if (biased[e] > second) {
                    second = biased[e];
                }
            }
            group[g] = per > 1 ? best + second : best;
        }
        // Keep the topk_group best groups (marked by setting their score to −∞) ...
        for (int r = 0; r < c->topk_group; r++) group[argmax(group, G)] = -INFINITY;
        // ... and rule out every expert of the groups left unmarked.
        for (int e = 0; e < E; e++)
            if (group[e / per] != -INFINITY) biased[e] = -INFINITY;
    }
    for (int k = 0; k < K; k++) { // top-K of what is left, best first
        idx[k] = argmax(biased, E);
        biased[idx[k]] = -INFINITY;
    }
    // The weights come from s alone: the bias decides who is chosen, never how much they count.
    float sum = 0.0f;
    for (int k = 0; k < K; k++) sum += weight[k] = s[idx[k]];
    float denom = c->norm_topk_prob ? sum + 1e-20f : 1.0f;
    for (int k = 0; k < K; k++) weight[k] = weight[k] / denom * c->routed_scaling_factor;
}
//! [moe-route]

/* s = softmax(logits) or sigmoid(logits), row by row. */
static void scores_forward(float *s, const float *logits, int N, int E, int sigmoid) {
    if (!sigmoid) {
        softmax_forward(s, logits, N, E);
        return;
    }
    for (long i = 0; i < (long)N * E; i++) s[i] = 1.0f / (1.0f + expf(-logits[i]));
}

/* ------------------------------------------------------------------ */
/* Forward                                                             */
/* ------------------------------------------------------------------ */

/* The complementary sequence-wise balance loss (DeepSeek-V3 eqs. 17–20), per sequence of T tokens:
 *     f_i = E/(K·T) · (tokens of the sequence that chose i),   P_i = (1/T) Σ_t s_{t,i} / Σ_j s_{t,j}
 *     aux = α Σ_i f_i P_i,  averaged over the B sequences. */
static void aux_forward(ts_moe_acts *a, const ts_config *c, int B, int T) {
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        float *f = a->f + (size_t)b * E;
        memset(f, 0, (size_t)E * sizeof(float));
        for (int i = b * T * K; i < (b + 1) * T * K; i++) f[a->topk_idx[i]] += 1.0f;
        for (int e = 0; e < E; e++) f[e] *= (float)E / ((float)K * T);
        double seq = 0.0;
        for (int t = b * T; t < (b + 1) * T; t++) {
            const float *s = a->scores + (size_t)t * E;
            double sum = 0.0, fp = 0.0;
            for (int e = 0; e < E; e++) sum += s[e];
            for (int e = 0; e < E; e++) fp += f[e] * (s[e] / sum);
            seq += fp / T;
        }
        total += c->aux_loss_alpha * seq;
    }
    a->aux_loss = total / B;
}

//! [moe-forward]
void moe_forward(float *y, ts_moe_acts *a, const float *x, const ts_moe_weights *w, const ts_config *c, int B, int T) {
    int N = B * T, C = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    int Fe = c->moe_intermediate_size, Fs = shared_size(c), NK = N * K;
    // shared experts: every token, always
    if (Fs > 0) mlp_forward(y, &a->shared, x, &w->shared, N, C, Fs);
    else memset(y, 0, (size_t)N * C * sizeof(float));
    a->aux_loss = 0.0;
    if (E == 0) return;
    // router: s (N,E) = softmax or sigmoid(x · W_gᵀ), then each token picks K experts
    matmul_forward(a->logits, x, w->gate, NULL, N, C, E);
    scores_forward(a->scores, a->logits, N, E, is_sigmoid(c));
    for (int t = 0; t < N; t++)
        moe_route_token(a->topk_idx + (size_t)t * K, a->topk_w + (size_t)t * K, a->scores + (size_t)t * E, w->bias, c,
                        a->work);
    // dispatch: the N·K (token, slot) pairs grouped by expert, tokens in order within an expert
    memset(a->counts, 0, (size_t)E * sizeof(int));
    for (int i = 0; i < NK; i++) a->counts[a->topk_idx[i]]++;
    a->offsets[0] = 0;
    for (int e = 0; e < E; e++) a->offsets[e + 1] = a->offsets[e] + a->counts[e];
    for (int e = 0, r = 0; e < E; e++)
        for (int i = 0; i < NK; i++)
            if (a->topk_idx[i] == e) {
                a->rows[r] = i / K; // the token
                a->slot_row[i] = r++;
            }
    TS_OMP(parallel for schedule(static) if ((double)NK * C > 65536)) // threads only for a batch: a decode step is too small
    for (int r = 0; r < NK; r++) memcpy(a->xin + (size_t)r * C, x + (size_t)a->rows[r] * C, C * sizeof(float));
    // one MLP per expert over all of its tokens at once (appendix C: on the ranks that own them)
    if (w->remote) w->remote->forward(w->remote->ctx, a, w, c);
    for (int e = 0; e < E && !w->remote; e++) {
        int n = a->counts[e];
        size_t off = (size_t)a->offsets[e];
        if (n == 0) continue;
        ts_mlp_acts ea = {a->expert.gate + off * Fe, a->expert.up + off * Fe, a->expert.hidden + off * Fe};
        mlp_forward(a->eout + off * C, &ea, a->xin + off * C, &w->experts[e], n, C, Fe);
    }
    // combine: y_t += Σ_k g_k · expert_k(x_t), slots in order
    TS_OMP(parallel for schedule(static) if ((double)NK * C > 65536))
    for (int t = 0; t < N; t++)
        for (int k = 0; k < K; k++) {
            float g = a->topk_w[t * K + k];
            const float *eo = a->eout + (size_t)a->slot_row[t * K + k] * C;
            for (int i = 0; i < C; i++) y[(size_t)t * C + i] += g * eo[i];
        }
    if (c->aux_loss_alpha > 0) aux_forward(a, c, B, T);
}
//! [moe-forward]

/* ------------------------------------------------------------------ */
/* Backward                                                            */
/* ------------------------------------------------------------------ */

//! [moe-router-backward]
/* dL/dg (N,K) and the auxiliary loss → dL/ds (N,E) → dL/d(logits) (N,E). */
static void router_backward(const ts_moe_scratch *sc, const ts_moe_acts *a, const ts_config *c, int B, int T) {
    int N = B * T, E = c->n_routed_experts, K = c->num_experts_per_tok;
    float scale = c->routed_scaling_factor, alpha = c->aux_loss_alpha;
    memset(sc->d_scores, 0, (size_t)N * E * sizeof(float));
    TS_OMP(parallel for schedule(static))
    for (int t = 0; t < N; t++) {
        const float *s = a->scores + (size_t)t * E, *dg = sc->d_w + (size_t)t * K;
        const int *idx = a->topk_idx + (size_t)t * K;
        float *ds = sc->d_scores + (size_t)t * E;
        if (c->norm_topk_prob) {
            // g_k = scale · s_k / D, D = Σ_j s_j + ε over the chosen:
            // dL/ds_j = (scale/D) · (dL/dg_j − Σ_k dL/dg_k · s_k/D)
            float sum = 0.0f;
            for (int k = 0; k < K; k++) sum += s[idx[k]];
            float D = sum + 1e-20f, dot = 0.0f;
            for (int k = 0; k < K; k++) dot += dg[k] * (s[idx[k]] / D);
            for (int k = 0; k < K; k++) ds[idx[k]] += scale / D * (dg[k] - dot);
        } else {
            for (int k = 0; k < K; k++) ds[idx[k]] += scale * dg[k]; // g_k = scale · s_k
        }
        if (alpha > 0) {
            // aux = (α/B) Σ_i f_i (1/T) Σ_t s'_{t,i}, s' = s / Σ_j s_j, f constant (a count):
            // dL/ds'_i = α f_i / (B·T), then through the normalisation
            const float *f = a->f + (size_t)(t / T) * E;
            float sum = 0.0f, dot = 0.0f, coef = alpha / ((float)B * T);
            for (int e = 0; e < E; e++) sum += s[e];
            for (int e = 0; e < E; e++) dot += coef * f[e] * (s[e] / sum);
            for (int e = 0; e < E; e++) ds[e] += (coef * f[e] - dot) / sum;
        }
    }
    if (is_sigmoid(c)) {
        for (long i = 0; i < (long)N * E; i++) // s = σ(z): ds/dz = s(1 − s)
            sc->d_logits[i] = sc->d_scores[i] * a->scores[i] * (1.0f - a->scores[i]);
    } else {
        memset(sc->d_logits, 0, (size_t)N * E * sizeof(float));
        softmax_backward(sc->d_logits, sc->d_scores, a->scores, N, E);
    }
}
//! [moe-router-backward]

//! [moe-backward]
void moe_backward(float *dx, const ts_moe_weights *dw, const ts_moe_scratch *s, const float *dy, const ts_moe_acts *a,
                  const float *x, const ts_moe_weights *w, const ts_config *c, int B, int T) {
    int N = B * T, C = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    int Fe = c->moe_intermediate_size, Fs = shared_size(c), NK = N * K;
    // y = shared(x) + ...
    if (Fs > 0) mlp_backward(dx, &dw->shared, &s->d_mlp, dy, &a->shared, x, &w->shared, N, C, Fs);
    if (E == 0) return;
    // y_t += g_k · eout_r:  dL/dg_k = dy_t · eout_r,  dL/d(eout_r) = g_k · dy_t
    TS_OMP(parallel for schedule(static))
    for (int t = 0; t < N; t++)
        for (int k = 0; k < K; k++) {
            size_t r = (size_t)a->slot_row[t * K + k];
            const float *eo = a->eout + r * C, *d = dy + (size_t)t * C;
            float g = a->topk_w[t * K + k], dot = 0.0f;
            for (int i = 0; i < C; i++) {
                dot += d[i] * eo[i];
                s->d_eout[r * C + i] = g * d[i];
            }
            s->d_w[t * K + k] = dot;
        }
    // each expert's MLP backward over its gathered tokens (appendix C: on the ranks that own them)
    memset(s->d_xin, 0, (size_t)NK * C * sizeof(float));
    if (w->remote) w->remote->backward(w->remote->ctx, s->d_xin, dw, s->d_eout, a, w, c);
    for (int e = 0; e < E && !w->remote; e++) {
        int n = a->counts[e];
        size_t off = (size_t)a->offsets[e];
        if (n == 0) continue;
        ts_mlp_acts ea = {a->expert.gate + off * Fe, a->expert.up + off * Fe, a->expert.hidden + off * Fe};
        mlp_backward(s->d_xin + off * C, &dw->experts[e], &s->d_mlp, s->d_eout + off * C, &ea, a->xin + off * C,
                     &w->experts[e], n, C, Fe);
    }
    // scatter-add: each token collects the input gradients of its K slots, in slot order
    if (dx) {
        TS_OMP(parallel for schedule(static))
        for (int t = 0; t < N; t++)
            for (int k = 0; k < K; k++) {
                const float *d = s->d_xin + (size_t)a->slot_row[t * K + k] * C;
                for (int i = 0; i < C; i++) dx[(size_t)t * C + i] += d[i];
            }
    }
    // the router: through the weights g (and the auxiliary loss) to the logits, then logits = x · W_gᵀ
    router_backward(s, a, c, B, T);
    matmul_backward(dx, dw->gate, NULL, s->d_logits, x, w->gate, N, C, E);
}
//! [moe-backward]

/* ------------------------------------------------------------------ */
/* Auxiliary-loss-free balancing                                       */
/* ------------------------------------------------------------------ */

//! [moe-bias-update]
void moe_update_bias(float *bias, const int *counts, int E, float gamma) {
    long total = 0;
    for (int e = 0; e < E; e++) total += counts[e];
    for (int e = 0; e < E; e++) {
        // b_i −= γ·sign(load_i − mean load), comparing load_i·E with the total keeps it in integers
        long diff = (long)counts[e] * E - total;
        if (diff > 0) bias[e] -= gamma;      // overloaded: less attractive
        else if (diff < 0) bias[e] += gamma; // underloaded: more attractive
    }
}
//! [moe-bias-update]

/* ------------------------------------------------------------------ */
/* The model's MoE layers                                              */
/* ------------------------------------------------------------------ */

int ts_model_moe_layers(const ts_model *m) {
    int n = 0;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++) n += ts_moe_is_layer(&m->cfg, l);
    return n;
}

void ts_model_expert_load(const ts_model *m, int *counts) {
    int E = m->cfg.n_routed_experts;
    for (int l = 0, j = 0; l < m->cfg.num_hidden_layers; l++) {
        if (!ts_moe_is_layer(&m->cfg, l)) continue;
        if (m->acts && m->cur_T > 0) memcpy(counts + (size_t)j * E, m->acts[l].moe.counts, (size_t)E * sizeof(int));
        else memset(counts + (size_t)j * E, 0, (size_t)E * sizeof(int));
        j++;
    }
}

void ts_model_update_router_bias(ts_model *m, float gamma) {
    if (!m->acts || m->cur_T == 0) return;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        if (ts_moe_is_layer(&m->cfg, l))
            moe_update_bias(m->w.layers[l].moe.bias, m->acts[l].moe.counts, m->cfg.n_routed_experts, gamma);
}

static int check_layer(const ts_model *m, int layer) {
    if (layer < 0 || layer >= m->cfg.num_hidden_layers || !ts_moe_is_layer(&m->cfg, layer)) {
        ts_fail(TS_ERR_ARG, "layer %d is not a mixture-of-experts layer (layers %d..%d are, when n_routed_experts > 0)",
                layer, m->cfg.first_k_dense_replace, m->cfg.num_hidden_layers - 1);
        return -1;
    }
    if (!m->acts || m->cur_T == 0) {
        ts_fail(TS_ERR_ARG, "no routing yet: run a forward first");
        return -1;
    }
    return 0;
}

int ts_model_routing(const ts_model *m, int layer, int *idx, float *weight) {
    if (check_layer(m, layer)) return -1;
    size_t NK = (size_t)m->cur_B * m->cur_T * m->cfg.num_experts_per_tok;
    if (idx) memcpy(idx, m->acts[layer].moe.topk_idx, NK * sizeof(int));
    if (weight) memcpy(weight, m->acts[layer].moe.topk_w, NK * sizeof(float));
    return m->cur_B * m->cur_T;
}

int ts_model_view_router_scores(const ts_model *m, int layer, ts_view *out) {
    if (check_layer(m, layer)) return -1;
    memset(out, 0, sizeof *out);
    out->name = "router scores";
    out->data = m->acts[layer].moe.scores;
    out->ndim = 2;
    out->shape[0] = m->cur_B * m->cur_T;
    out->shape[1] = m->cfg.n_routed_experts;
    return 0;
}

/**
 * @file gradcheck_model.h
 * @brief The whole-model gradient check the chapter suites and the
 *        double-precision suite (tests/f64/) share: every tensor of the model's
 *        own parameter registry against finite differences, with its coverage
 *        checked, so that no tensor is skipped by accident or checked twice.
 */
#ifndef TS_GRADCHECK_MODEL_H
#define TS_GRADCHECK_MODEL_H

#include "testutil.h"

#include "core/gradcheck.h"
#include "model/model.h"
#include "model/moe.h"

/** How one tensor of the registry takes part in the check. */
typedef enum {
    TU_GC_CHECK,        /**< checked, and some entry of its gradient must be non-zero */
    TU_GC_MAY_BE_ZERO,  /**< checked, but may get no gradient at all (a routed expert no token chose) */
    TU_GC_SKIP,         /**< not perturbed, and its gradient must be exactly zero (the routing bias: it
                             chooses experts but never weighs them, so the loss is flat or jumps in it) */
} tu_gc_role;

/** Decides the role of each tensor; NULL means TU_GC_CHECK for all. */
typedef tu_gc_role (*tu_gc_role_fn)(const ts_model *m, const ts_param *t);

enum { TU_GC_MAX = 256 };

/** The table that was checked and the results, one per checked tensor. */
typedef struct {
    int n;                        /**< tensors checked */
    ts_gc_tensor t[TU_GC_MAX];
    ts_gc_result r[TU_GC_MAX];
    tu_gc_role role[TU_GC_MAX];
    double worst;                 /**< worst max_rel over the checked tensors (NaN if any is NaN) */
    double worst_abs;             /**< worst max_abs */
} tu_model_gc;

/**
 * @brief The check table of a model: its own parameter registry, less the
 * tensors @p role skips (whose gradient must then be exactly zero). The test
 * fails unless the registry covers the model: tensors in layout order, none
 * overlapping another, their sizes adding up to ts_model_count_params().
 */
static inline void tu_model_gc_table(tu_model_gc *g, ts_model *m, tu_gc_role_fn role) {
    const ts_params *p = &m->params;
    memset(g, 0, sizeof *g);
    size_t covered = 0, end = 0;
    for (int i = 0; i < p->count; i++) {
        const ts_param *t = &p->params[i];
        if (t->offset < end) fail_msg("%s overlaps the tensor before it", t->name);
        end = t->offset + t->numel;
        covered += t->numel;
        tu_gc_role r = role ? role(m, t) : TU_GC_CHECK;
        if (r == TU_GC_SKIP) {
            for (size_t j = 0; j < t->numel; j++)
                if (p->grad[t->offset + j] != 0)
                    fail_msg("%s: gradient %g at #%zu, expected none", t->name, (double)p->grad[t->offset + j], j);
            continue;
        }
        assert_true(g->n < TU_GC_MAX);
        g->role[g->n] = r;
        g->t[g->n++] = (ts_gc_tensor){t->name, p->data + t->offset, p->grad + t->offset, t->numel};
    }
    long long total;
    ts_model_count_params(&m->cfg, &total, NULL);
    assert_int_equal((long long)covered, total);
    assert_true(end <= p->numel);
}

/** @brief Once g->r is filled in: the worst errors, and every tensor that must have a gradient has one. */
static inline void tu_model_gc_finish(tu_model_gc *g) {
    g->worst = g->worst_abs = 0;
    for (int i = 0; i < g->n; i++) {
        g->worst = isnan(g->r[i].max_rel) || isnan(g->worst) ? NAN : fmax(g->worst, g->r[i].max_rel);
        g->worst_abs = fmax(g->worst_abs, g->r[i].max_abs);
        if (!(g->r[i].grad_scale > 0) && g->role[i] != TU_GC_MAY_BE_ZERO)
            fail_msg("%s received no gradient", g->t[i].name); /* a tensor silently disconnected */
    }
}

/**
 * @brief Check the gradient in m->params.grad (the caller has run the forward
 * and backward at the current weights) against finite differences of @p loss,
 * every tensor of tu_model_gc_table() at step @p h; @p per_tensor and
 * @p report are as for ts_gradcheck().
 */
static inline void tu_gradcheck_model(tu_model_gc *g, ts_model *m, ts_loss_fn loss, void *ctx, double h,
                                      size_t per_tensor, tu_gc_role_fn role, FILE *report) {
    tu_model_gc_table(g, m, role);
    ts_gradcheck(loss, ctx, g->t, g->n, h, per_tensor, g->r, report);
    tu_model_gc_finish(g);
}

/* ---- MoE routing ---------------------------------------------------------- */

/* Top-K routing makes the loss piecewise smooth: it jumps where two experts
 * trade places. Finite differences are valid only where no step of the check
 * changes a token's chosen set; these helpers measure how far each decision is
 * from flipping and watch every forward of the check. */

enum { TU_MAX_E = 16 };

static inline int tu_cmp_double_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The smallest gap a perturbation would have to close to change some token's
 * chosen set: between the K-th and (K+1)-th biased score among the experts of
 * the kept groups, and between the last kept and the first dropped group. */
static inline double tu_routing_margin(const float *scores, const float *bias, int N, const ts_config *c) {
    int E = c->n_routed_experts, K = c->num_experts_per_tok, G = c->n_group, per = E / G;
    double worst = INFINITY, v[TU_MAX_E], gs[TU_MAX_E], sorted[TU_MAX_E], allowed[TU_MAX_E];
    assert_true(E <= TU_MAX_E);
    for (int t = 0; t < N; t++) {
        for (int e = 0; e < E; e++) v[e] = (double)(scores[(size_t)t * E + e] + (bias ? bias[e] : 0.0f));
        double cut = -INFINITY;
        if (G > 1) {
            for (int g = 0; g < G; g++) {
                memcpy(sorted, v + g * per, (size_t)per * sizeof(double));
                qsort(sorted, (size_t)per, sizeof(double), tu_cmp_double_desc);
                gs[g] = per > 1 ? sorted[0] + sorted[1] : sorted[0];
            }
            memcpy(sorted, gs, (size_t)G * sizeof(double));
            qsort(sorted, (size_t)G, sizeof(double), tu_cmp_double_desc);
            if (c->topk_group < G) worst = fmin(worst, sorted[c->topk_group - 1] - sorted[c->topk_group]);
            cut = sorted[c->topk_group - 1];
        }
        int n = 0;
        for (int e = 0; e < E; e++)
            if (G == 1 || gs[e / per] >= cut) allowed[n++] = v[e];
        qsort(allowed, (size_t)n, sizeof(double), tu_cmp_double_desc);
        if (n > K) worst = fmin(worst, allowed[K - 1] - allowed[K]);
    }
    return worst;
}

/** The smallest routing margin over the MoE layers of the last forward (of N tokens). */
static inline double tu_model_routing_margin(const ts_model *m, int N) {
    double worst = INFINITY;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        if (ts_moe_is_layer(&m->cfg, l))
            worst = fmin(worst, tu_routing_margin(m->acts[l].moe.scores, m->w.layers[l].moe.bias, N, &m->cfg));
    return worst;
}

/* Do two routings choose the same sets (the order within a token's K does not matter)? */
static inline int tu_same_sets(const int *a, const int *b, int N, int K) {
    for (int t = 0; t < N; t++)
        for (int k = 0; k < K; k++) {
            int found = 0;
            for (int j = 0; j < K; j++) found |= a[t * K + k] == b[t * K + j];
            if (!found) return 0;
        }
    return 1;
}

/** The routing at the point being checked, and what every later forward did to it. */
typedef struct {
    int N;            /**< tokens per forward */
    int *idx;         /**< (L, N, K) chosen experts at the unperturbed point */
    float *scores;    /**< (L, N, E) router scores there */
    int flips;        /**< forwards whose chosen sets differed */
    double max_shift; /**< the largest change of any score over those forwards */
} tu_routing_watch;

/** Remember the routing of the last forward (N tokens) as the reference. */
static inline void tu_routing_watch_init(tu_routing_watch *w, const ts_model *m, int N) {
    const ts_config *c = &m->cfg;
    int L = c->num_hidden_layers, K = c->num_experts_per_tok, E = c->n_routed_experts;
    *w = (tu_routing_watch){.N = N};
    w->idx = calloc((size_t)L * N * K, sizeof(int));
    w->scores = calloc((size_t)L * N * E, sizeof(float));
    assert_true(w->idx && w->scores);
    for (int l = 0; l < L; l++)
        if (ts_moe_is_layer(c, l)) {
            memcpy(w->idx + (size_t)l * N * K, m->acts[l].moe.topk_idx, (size_t)N * K * sizeof(int));
            memcpy(w->scores + (size_t)l * N * E, m->acts[l].moe.scores, (size_t)N * E * sizeof(float));
        }
}

/** Compare the last forward's routing with the reference; call after every forward of the check. */
static inline void tu_routing_watch_update(tu_routing_watch *w, const ts_model *m) {
    const ts_config *c = &m->cfg;
    int N = w->N, K = c->num_experts_per_tok, E = c->n_routed_experts, flipped = 0;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        if (!ts_moe_is_layer(c, l)) continue;
        flipped |= !tu_same_sets(w->idx + (size_t)l * N * K, m->acts[l].moe.topk_idx, N, K);
        const float *ref = w->scores + (size_t)l * N * E;
        for (size_t i = 0; i < (size_t)N * E; i++)
            w->max_shift = fmax(w->max_shift, fabs((double)m->acts[l].moe.scores[i] - (double)ref[i]));
    }
    w->flips += flipped;
}

static inline void tu_routing_watch_free(tu_routing_watch *w) {
    free(w->idx);
    free(w->scores);
}

#endif

/**
 * @file grpo.c
 * @brief GRPO on given rollouts: advantages, the per-token coefficient, the
 *        loss through the open model, the training loop's loss (see grpo.h).
 */
#include "train/grpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/loss.h"

ts_grpo_opts ts_grpo_opts_default(void) {
    ts_grpo_opts o = {
        .eps_low = 0.2f,
        .eps_high = 0.2f,
        .beta = 0.04f,
        .adv_eps = 1e-4f,
        .scale_by_std = 1,
        .norm = TS_GRPO_NORM_SEQUENCE,
        .max_len = 0,
        .drop_zero_var = 0,
        .aux_weight = 0.0f,
    };
    return o;
}

const char *const ts_grpo_stat_names[TS_GRPO_N_STATS] = {"reward",        "kl",             "clip_frac",
                                                         "zero_var_frac", "completion_len", "entropy"};

//! [grpo-advantage]
void ts_grpo_advantages(double *adv, unsigned char *zero_var, const float *rewards, int P, int G, int scale_by_std,
                        double eps) {
    for (int g = 0; g < P; g++) {
        const float *r = rewards + (size_t)g * G;
        double *a = adv + (size_t)g * G;
        int all_equal = 1;
        for (int j = 1; j < G; j++) all_equal &= r[j] == r[0];
        if (zero_var) zero_var[g] = (unsigned char)all_equal;
        if (all_equal) { // no signal in this group: nothing to prefer, A = 0 exactly
            for (int j = 0; j < G; j++) a[j] = 0.0;
            continue;
        }
        double mean = 0, var = 0;
        for (int j = 0; j < G; j++) mean += r[j];
        mean /= G;
        for (int j = 0; j < G; j++) var += (r[j] - mean) * (r[j] - mean);
        double std = sqrt(var / G); // population std: the group's own spread (see grpo.h)
        for (int j = 0; j < G; j++) a[j] = scale_by_std ? (r[j] - mean) / (std + eps) : r[j] - mean;
    }
}
//! [grpo-advantage]

//! [grpo-coefficient]
/* A_j, then per token J = min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A) − β·k3 and its coefficient
 * dL/dℓ = −dJ/dℓ = −A·ρ·[not clipped] + β·(1 − π_ref/π_θ) (grpo.h derives it). */
int ts_grpo_coefficients(double *adv, ts_grpo_term *term, const float *rewards, const double *token_adv,
                         const int *targets, const double *logp, const double *old_logp, const double *ref_logp, int G,
                         int T, const ts_grpo_opts *o) {
    int all_equal = 1;
    for (int j = 1; j < G; j++) all_equal &= rewards[j] == rewards[0];
    double mean = 0, var = 0;
    for (int j = 0; j < G; j++) mean += rewards[j];
    mean /= G;
    for (int j = 0; j < G; j++) var += (rewards[j] - mean) * (rewards[j] - mean);
    double std = sqrt(var / G); // population std: the group's own spread (see grpo.h)
    for (int j = 0; j < G; j++) // no signal in a zero-variance group: nothing to prefer, A = 0 exactly
        adv[j] = all_equal ? 0.0 : o->scale_by_std ? (rewards[j] - mean) / (std + o->adv_eps) : rewards[j] - mean;

    double lo = 1.0 - o->eps_low, hi = 1.0 + o->eps_high, M = TS_GRPO_LOG_RATIO_MAX;
    for (int j = 0; j < G; j++)
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)j * T + t;
            ts_grpo_term *e = &term[k];
            memset(e, 0, sizeof *e);
            if (targets[k] == TS_IGNORE) continue;
            double A = token_adv ? token_adv[k] : adv[j];
            double x = logp[k] - old_logp[k];
            int clamped = x > M || x < -M; // beyond the clamp the term is constant: no gradient
            e->rho = exp(x > M ? M : x < -M ? -M : x); // exactly 1 when π_old is the policy itself (μ = 1)
            e->clipped = (A > 0 && e->rho > hi) || (A < 0 && e->rho < lo);
            double rho_clip = e->rho < lo ? lo : e->rho > hi ? hi : e->rho;
            e->J = e->clipped ? rho_clip * A : e->rho * A; // = min(ρA, clip(ρ)A)
            e->coef = e->clipped || clamped ? 0.0 : -A * e->rho;
            if (ref_logp) {
                double u = ref_logp[k] - logp[k]; // u = log(π_ref/π_θ)
                clamped = u > M || u < -M;
                u = u > M ? M : u < -M ? -M : u;
                double ratio = exp(u);
                e->k3 = ratio - u - 1.0;
                e->J -= o->beta * e->k3;
                if (!clamped) e->coef += o->beta * (1.0 - ratio); // β·dk3/dℓ, dk3/dℓ = 1 − π_ref/π_θ
            }
        }
    return all_equal;
}
//! [grpo-coefficient]

/* log softmax(z)[y] and the entropy −Σ p log p of one row, in double. */
static void row_logp_entropy(const float *z, int y, int V, double *logp, double *entropy) {
    double mx = z[0];
    for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    double s = 0, sz = 0;
    for (int v = 0; v < V; v++) {
        double e = exp((double)z[v] - mx);
        s += e;
        sz += e * ((double)z[v] - mx);
    }
    double logz = log(s); // log Σ exp(z − max)
    *logp = (double)z[y] - mx - logz;
    *entropy = logz - sz / s; // −Σ p (z − max − logz)
}

static ts_status check_opts(const ts_grpo_opts *o, const ts_rollout *r) {
    if (!(o->eps_low >= 0 && o->eps_low < 1) || !(o->eps_high >= 0 && isfinite(o->eps_high)))
        return ts_fail(TS_ERR_ARG, "grpo: clip range eps_low %g, eps_high %g: expected 0 <= eps_low < 1, eps_high >= 0",
                       (double)o->eps_low, (double)o->eps_high);
    if (!(o->beta >= 0 && isfinite(o->beta)))
        return ts_fail(TS_ERR_ARG, "grpo: beta %g: expected a finite number >= 0", (double)o->beta);
    if (!(o->adv_eps >= 0 && isfinite(o->adv_eps)))
        return ts_fail(TS_ERR_ARG, "grpo: adv_eps %g: expected a finite number >= 0", (double)o->adv_eps);
    if (!(o->aux_weight >= 0 && isfinite(o->aux_weight)))
        return ts_fail(TS_ERR_ARG, "grpo: aux_weight %g: expected a finite number >= 0", (double)o->aux_weight);
    if (o->beta > 0 && !r->ref_logp)
        return ts_fail(TS_ERR_ARG, "grpo: beta %g needs the reference log-probs (the rollout has none)", (double)o->beta);
    if (o->norm != TS_GRPO_NORM_SEQUENCE && o->norm != TS_GRPO_NORM_TOKEN && o->norm != TS_GRPO_NORM_CONSTANT)
        return ts_fail(TS_ERR_ARG, "grpo: unknown normalisation %d", (int)o->norm);
    if (o->norm == TS_GRPO_NORM_CONSTANT && o->max_len <= 0)
        return ts_fail(TS_ERR_ARG, "grpo: Dr. GRPO's normalisation needs max_len > 0 (the generation budget), got %d",
                       o->max_len);
    return TS_OK;
}

/* The rollout as the loss reads it: the mask agrees with the lengths, targets in the vocabulary, numbers finite. */
static ts_status check_rollout(const ts_rollout *r, const ts_grpo_opts *o, int V) {
    int n = r->P * r->G, T = r->T;
    for (int i = 0; i < n; i++) {
        if (!isfinite(r->rewards[i]))
            return ts_fail(TS_ERR_RANGE, "grpo: reward of sequence %d is %g", i, (double)r->rewards[i]);
        int counted = 0;
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)i * T + t;
            int y = r->targets[k];
            if (y == TS_IGNORE) continue;
            if (y < 0 || y >= V)
                return ts_fail(TS_ERR_RANGE, "grpo: target %d of sequence %d at position %d is outside the vocabulary "
                                             "(0..%d)", y, i, t, V - 1);
            if (r->has_old && !isfinite(r->old_logp[k]))
                return ts_fail(TS_ERR_RANGE, "grpo: old log-prob of sequence %d at position %d is %g", i, t,
                               r->old_logp[k]);
            if (r->token_adv && !isfinite(r->token_adv[k]))
                return ts_fail(TS_ERR_RANGE, "grpo: advantage of sequence %d at position %d is %g", i, t,
                               r->token_adv[k]);
            if (r->ref_logp && !isfinite(r->ref_logp[k]))
                return ts_fail(TS_ERR_RANGE, "grpo: reference log-prob of sequence %d at position %d is %g", i, t,
                               r->ref_logp[k]);
            counted++;
        }
        if (counted != r->completion_len[i] || counted < 1)
            return ts_fail(TS_ERR_ARG, "grpo: sequence %d has %d completion positions in its mask but length %d", i,
                           counted, r->completion_len[i]);
    }
    return TS_OK;
}

ts_status ts_grpo_loss(ts_grpo_stats *st, float *d_logits, ts_grpo_tokens *tok, const float *logits, const ts_rollout *r,
                       const ts_grpo_opts *o, int V) {
    ts_status s = check_opts(o, r);
    if (s || (s = check_rollout(r, o, V))) return s;
    int P = r->P, G = r->G, T = r->T, n = P * G;
    size_t NT = (size_t)n * T;
    double *adv = ts_malloc((size_t)n * sizeof(double), "grpo advantages");
    unsigned char *zero_var = ts_malloc((size_t)P, "grpo zero-variance flags");
    float *w = ts_malloc(NT * sizeof(float), "grpo weights");
    double *lp = ts_malloc(NT * sizeof(double), "grpo log-probs");
    ts_grpo_term *term = ts_malloc(NT * sizeof(ts_grpo_term), "grpo token terms");
    if (!adv || !zero_var || !w || !lp || !term) {
        free(adv);
        free(zero_var);
        free(w);
        free(lp);
        free(term);
        return TS_ERR_NOMEM;
    }
    double entropy = 0;
    for (size_t k = 0; k < NT; k++) {
        lp[k] = 0.0;
        if (r->targets[k] == TS_IGNORE) continue;
        double h;
        row_logp_entropy(logits + k * V, r->targets[k], V, &lp[k], &h);
        entropy += h;
    }
    for (int g = 0; g < P; g++) {
        size_t k0 = (size_t)g * G * T;
        // μ = 1: π_old is this very policy, ρ = exp(0) = 1 and the clip cannot fire
        zero_var[g] = (unsigned char)ts_grpo_coefficients(
            adv + (size_t)g * G, term + k0, r->rewards + (size_t)g * G, r->token_adv ? r->token_adv + k0 : NULL,
            r->targets + k0, lp + k0, r->has_old ? r->old_logp + k0 : lp + k0, r->ref_logp ? r->ref_logp + k0 : NULL,
            G, T, o);
    }
    memset(st, 0, sizeof *st);
    int groups_zero = 0;
    long tokens_used = 0, tokens_all = 0;
    double reward_sum = 0;
    for (int g = 0; g < P; g++) {
        groups_zero += zero_var[g];
        int used = !(o->drop_zero_var && zero_var[g]);
        st->groups_used += used;
        for (int j = 0; j < G; j++) {
            int i = g * G + j;
            reward_sum += r->rewards[i];
            tokens_all += r->completion_len[i];
            if (used) tokens_used += r->completion_len[i];
        }
    }
    //! [grpo-norm]
    // D_i of L = −Σ_i Σ_t J_it / D_i (grpo.h, ts_grpo_norm)
    double n_used = (double)st->groups_used * G;
    double d_seq = n_used, d_tok = (double)tokens_used, d_const = n_used * o->max_len;
    //! [grpo-norm]

    double loss = 0, kl = 0;
    long clipped = 0;
    st->ratio_min = INFINITY;
    st->ratio_max = -INFINITY;
    for (int i = 0; i < n; i++) {
        int used = !(o->drop_zero_var && zero_var[i / G]);
        double D = o->norm == TS_GRPO_NORM_SEQUENCE ? d_seq * r->completion_len[i]
                   : o->norm == TS_GRPO_NORM_TOKEN  ? d_tok
                                                    : d_const;
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)i * T + t;
            const ts_grpo_term *e = &term[k];
            w[k] = 0.0f;
            if (r->targets[k] != TS_IGNORE) {
                kl += e->k3;
                clipped += e->clipped;
                st->ratio_min = fmin(st->ratio_min, e->rho);
                st->ratio_max = fmax(st->ratio_max, e->rho);
                if (used) {
                    loss -= e->J / D;
                    w[k] = (float)((0.0 - e->coef) / D); // dJ/dℓ / D, the cross-entropy weight (grpo.h); 0 is +0
                }
            }
            if (tok) {
                if (tok->weight) tok->weight[k] = w[k];
                if (tok->logp) tok->logp[k] = lp[k];
                if (tok->k3) tok->k3[k] = (float)e->k3;
                if (tok->clipped) tok->clipped[k] = (unsigned char)e->clipped;
            }
        }
    }
    st->loss = loss;
    st->reward_mean = reward_sum / n;
    st->kl = r->ref_logp ? kl / tokens_all : NAN;
    st->clip_frac = (double)clipped / tokens_all;
    st->zero_var_frac = (double)groups_zero / P;
    st->completion_len = (double)tokens_all / n;
    st->entropy = entropy / tokens_all;
    st->tokens_used = tokens_used;
    s = TS_OK;
    //! [grpo-backward]
    if (d_logits && tokens_used > 0) {
        // dL/dz = w·(p − onehot): a weighted cross-entropy backward, the weights already divided by D (Z = 1)
        ts_ce_result ce;
        s = ts_loss_crossentropy(&ce, d_logits, NULL, logits, r->targets, w, 1.0, n * T, V);
    }
    //! [grpo-backward]
    free(adv);
    free(zero_var);
    free(w);
    free(lp);
    free(term);
    return s;
}

ts_status ts_grpo_token_logp(ts_model *m, const ts_rollout *r, double *out) {
    int n = r->P * r->G, T = r->T, V = m->cfg.vocab_size;
    // A frozen model (the reference) keeps nothing for a backward: it runs one group at a time, so its
    // activations take one group's memory, not the batch's. No op mixes rows, so each row's logits are the
    // batch forward's up to rounding (a matrix product of another height may round differently).
    int chunk = m->mode == TS_MODEL_FROZEN ? r->G : n;
    for (int b0 = 0; b0 < n; b0 += chunk) {
        int rows = n - b0 < chunk ? n - b0 : chunk;
        ts_status s = ts_model_forward_logits(m, r->tokens + (size_t)b0 * T, rows, T);
        if (s) return s;
        for (size_t j = 0; j < (size_t)rows * T; j++) {
            size_t k = (size_t)b0 * T + j;
            int y = r->targets[k];
            out[k] = 0.0;
            if (y == TS_IGNORE) continue;
            if (y < 0 || y >= V)
                return ts_fail(TS_ERR_RANGE, "grpo: target %d at row %zu is outside the vocabulary (0..%d)", y, k,
                               V - 1);
            double h;
            row_logp_entropy(m->logits + j * V, y, V, &out[k], &h); // the loss's own log π: equal weights, ρ = 1
        }
    }
    return TS_OK;
}

//! [grpo-step]
ts_status ts_grpo_step(ts_model *m, const ts_rollout *r, const ts_grpo_opts *o, float *loss, ts_grpo_stats *st) {
    int N = r->P * r->G * r->T, V = m->cfg.vocab_size;
    if (m->mode == TS_MODEL_FROZEN) return ts_fail(TS_ERR_ARG, "grpo: the policy is frozen (no gradients to train)");
    ts_status s = ts_model_forward_logits(m, r->tokens, r->P * r->G, r->T);
    if (s) return s;
    memset(m->d_logits, 0, (size_t)N * V * sizeof(float));
    if ((s = ts_grpo_loss(st, m->d_logits, NULL, m->logits, r, o, V))) return s;
    *loss = (float)(st->loss + o->aux_weight * m->aux_loss);
    return ts_model_backward_from(m, m->d_logits, NULL, o->aux_weight);
}
//! [grpo-step]

static ts_status grpo_loop_step(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats) {
    ts_grpo_loss_ctx *c = ctx;
    const ts_rollout *r = c->rollout;
    if (!r) return ts_fail(TS_ERR_ARG, "grpo: no rollout batch");
    size_t nt = (size_t)r->P * r->G * r->T;
    if (b->B != r->P * r->G || b->T != r->T || memcmp(b->tokens, r->tokens, nt * sizeof(int)) ||
        memcmp(b->targets, r->targets, nt * sizeof(int)))
        return ts_fail(TS_ERR_ARG, "grpo: the batch (%d x %d) is not the current rollout batch (%d x %d)", b->B, b->T,
                       r->P * r->G, r->T);
    ts_status s = ts_grpo_step(m, r, &c->opts, loss, &c->last);
    if (s) return s;
    const ts_grpo_stats *st = &c->last;
    double v[TS_GRPO_N_STATS] = {st->reward_mean,    st->kl,         st->clip_frac, st->zero_var_frac,
                                 st->completion_len, st->entropy};
    memcpy(stats, v, sizeof v);
    return TS_OK;
}

ts_loss ts_grpo_loop_loss(ts_grpo_loss_ctx *ctx) {
    ts_loss l = {.step = grpo_loop_step, .ctx = ctx, .n_stats = TS_GRPO_N_STATS, .stat_names = ts_grpo_stat_names};
    return l;
}

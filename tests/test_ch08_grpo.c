/* Chapter 8: GRPO on given rollouts (src/train/grpo.c, src/data/rollout.c).
 *
 * The loss's gradient against finite differences (per token from the logits,
 * and through the whole model) with π_old ≠ π_θ and the clip active on some
 * tokens; equal rewards give exactly no update; μ = 1 with β = 0 is REINFORCE
 * with the group mean as baseline, bit for bit; the three normalisations and
 * the advantages against hand computations; k3 ≥ 0, = 0 at π_ref = π_θ, and
 * its gradient; the loss in the shared training loop; bad input. */
#include "testutil.h"

#include "core/gradcheck.h"
#include "core/ops.h"
#include "model/model.h"
#include "train/grpo.h"
#include "train/loss.h"

/* ---- a tiny model and random rollouts ---------------------------------- */

static ts_config tiny(void) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 13;
    c.hidden_size = 8;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 4;
    c.intermediate_size = 12;
    c.max_position_embeddings = 32;
    c.initializer_range = 0.4f; /* large weights: every nonlinearity is exercised */
    return c;
}

static void make(ts_model *m, const ts_config *c, ts_model_mode mode, uint64_t seed) {
    assert_int_equal(ts_model_create(m, c, mode), TS_OK);
    ts_model_init_weights(m, seed);
}

/* A frozen copy of @p src whose every weight moved by sigma·N(0,1): π_old after
 * a few updates, or a reference that drifted from the policy. */
static void perturbed_copy(ts_model *dst, const ts_model *src, float sigma, uint64_t seed) {
    assert_int_equal(ts_model_create(dst, &src->cfg, TS_MODEL_FROZEN), TS_OK);
    ts_rng r;
    ts_rng_seed(&r, seed, TS_STREAM_TEST);
    for (size_t i = 0; i < src->params.numel; i++)
        dst->params.data[i] = src->params.data[i] + sigma * ts_rng_normal(&r);
}

enum { P = 2, G = 4, T = 8, NSEQ = P * G, NT = NSEQ * T };

/* P·G sequences of random tokens: prompts of 1..3 tokens, completions of 1..T−p,
 * rewards 0 or 1 with both values in every group (overridden by the tests). */
static void random_rollout(ts_rollout *r, int P_, int V, int with_ref, uint64_t seed) {
    assert_int_equal(ts_rollout_alloc(r, P_, G, T, with_ref), TS_OK);
    ts_rng g;
    ts_rng_seed(&g, seed, TS_STREAM_TEST);
    for (int i = 0; i < P_ * G; i++) {
        int prompt[T], completion[T];
        int p = 1 + (int)ts_rng_below(&g, 3), c = 1 + (int)ts_rng_below(&g, (uint64_t)(T - p));
        for (int k = 0; k < p; k++) prompt[k] = (int)ts_rng_below(&g, (uint64_t)V);
        for (int k = 0; k < c; k++) completion[k] = (int)ts_rng_below(&g, (uint64_t)V);
        float reward = (i % G == 0) ? 1.0f : (i % G == 1) ? 0.0f : (float)ts_rng_below(&g, 2);
        assert_int_equal(ts_rollout_set(r, i, prompt, p, completion, c, reward, 0), TS_OK);
    }
}

static size_t nrows(const ts_rollout *r) { return (size_t)r->P * r->G * r->T; }

/* log ρ's distance to the clip's kinks, over the tokens whose advantage is not 0
 * (where A = 0 the clip changes nothing): finite differences must not cross one. */
static double clip_margin(const ts_rollout *r, const double *logp, const ts_grpo_opts *o) {
    double worst = INFINITY, hi = log(1.0 + o->eps_high), lo = log(1.0 - o->eps_low);
    double adv[64];
    assert_true(r->P * r->G <= 64);
    ts_grpo_advantages(adv, NULL, r->rewards, r->P, r->G, o->scale_by_std, o->adv_eps);
    for (size_t k = 0; k < nrows(r); k++) {
        if (r->targets[k] == TS_IGNORE || adv[k / r->T] == 0.0) continue;
        double lr = logp[k] - r->old_logp[k];
        worst = fmin(worst, fmin(fabs(lr - hi), fabs(lr - lo)));
    }
    return worst;
}

/* ---- the rollout layout ---------------------------------------------------- */

/* Prompt, completion, padding; position t predicts token t+1, so the completion
 * mask covers positions p−1 .. p+c−2, and the batch the loop sees is a copy. */
static void rollout_layout(void **state) {
    (void)state;
    ts_rollout r;
    assert_int_equal(ts_rollout_alloc(&r, 1, 2, 8, 0), TS_OK);
    const int prompt[3] = {5, 6, 7}, completion[2] = {8, 9};
    assert_int_equal(ts_rollout_set(&r, 1, prompt, 3, completion, 2, 0.5f, 11), TS_OK);
    const int tokens[8] = {5, 6, 7, 8, 9, 11, 11, 11}, I = TS_IGNORE, targets[8] = {I, I, 8, 9, I, I, I, I};
    assert_memory_equal(r.tokens + 8, tokens, sizeof tokens);
    assert_memory_equal(r.targets + 8, targets, sizeof targets);
    assert_true(r.prompt_len[1] == 3 && r.completion_len[1] == 2 && r.rewards[1] == 0.5f && r.has_old == 0);
    for (int t = 0; t < 8; t++) assert_true(r.targets[t] == TS_IGNORE && r.tokens[t] == 0); /* not set yet */
    assert_int_equal(ts_rollout_tokens(&r), 2);
    ts_batch b;
    assert_int_equal(ts_batch_alloc(&b, 2, 8, 1), TS_OK);
    assert_int_equal(ts_rollout_to_batch(&r, &b), TS_OK);
    assert_true(b.B == 2 && b.T == 8 && b.weights[9] == 1.0f);
    assert_memory_equal(b.tokens, r.tokens, 16 * sizeof(int));
    assert_memory_equal(b.targets, r.targets, 16 * sizeof(int));
    ts_batch_free(&b);
    assert_int_equal(ts_batch_alloc(&b, 1, 8, 0), TS_OK);
    assert_int_equal(ts_rollout_to_batch(&r, &b), TS_ERR_ARG);
    ts_batch_free(&b);
    ts_rollout_free(&r);
}

/* ---- advantages ---------------------------------------------------------- */

/* By hand: rewards {1,0,0,0} have mean 1/4 and population std √(3/16) = √3/4,
 * so A = {3/√3, −1/√3, −1/√3, −1/√3} (= {√3, −1/√3, ...}) when ε = 0; {2,1,0,1}
 * have mean 1 and std √(1/2); equal rewards give 0; Dr. GRPO's A = r − mean. */
static void advantages_by_hand(void **state) {
    (void)state;
    const float r[12] = {1, 0, 0, 0, 2, 1, 0, 1, 0.5f, 0.5f, 0.5f, 0.5f};
    double a[12];
    unsigned char zv[3];
    ts_grpo_advantages(a, zv, r, 3, 4, 1, 0.0);
    const double want[12] = {sqrt(3.0), -1 / sqrt(3.0), -1 / sqrt(3.0), -1 / sqrt(3.0), sqrt(2.0), 0, -sqrt(2.0), 0,
                             0,         0,              0,              0};
    for (int i = 0; i < 12; i++) assert_true(fabs(a[i] - want[i]) <= 1e-15 * 4);
    assert_true(zv[0] == 0 && zv[1] == 0 && zv[2] == 1);
    for (int i = 8; i < 12; i++) assert_true(a[i] == 0.0); /* exactly */
    /* standardised: mean 0, mean square 1 (population std, ε = 0) */
    for (int g = 0; g < 2; g++) {
        double s = 0, s2 = 0;
        for (int j = 0; j < 4; j++) s += a[4 * g + j], s2 += a[4 * g + j] * a[4 * g + j];
        assert_true(fabs(s) <= 1e-14 && fabs(s2 / 4 - 1) <= 1e-14);
    }
    /* with ε: (r − mean)/(std + ε) */
    ts_grpo_advantages(a, zv, r, 3, 4, 1, 1e-4);
    assert_true(fabs(a[0] - 0.75 / (sqrt(0.1875) + 1e-4)) <= 1e-15);
    /* Dr. GRPO: no std */
    ts_grpo_advantages(a, zv, r, 3, 4, 0, 1e-4);
    const double centred[12] = {0.75, -0.25, -0.25, -0.25, 1, 0, -1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 12; i++) assert_true(a[i] == centred[i]);
    /* a group of one is zero-variance */
    ts_grpo_advantages(a, zv, r, 2, 1, 1, 1e-4);
    assert_true(a[0] == 0.0 && a[1] == 0.0 && zv[0] == 1 && zv[1] == 1);
}

/* ts_grpo_coefficients() (the loss's, and the exercise's) computes a group's
 * advantages itself: the same bits as ts_grpo_advantages(), the same zero-
 * variance flag, for both scalings; and at μ = 1 (old = logp), β = 0, each
 * token's coefficient is −A exactly (ρ = 1, no clip), 0 outside completions. */
static void coefficients_agree_with_advantages(void **state) {
    (void)state;
    enum { GC = 5, TC = 3 }; /* a group of 5, 3 positions each */
    float r[4 * GC];
    tu_fill(r, 4 * GC, 2.0f, 77);
    for (int j = 0; j < GC; j++) r[2 * GC + j] = 0.5f; /* group 2: all equal */
    r[3 * GC + 1] = r[3 * GC];                          /* group 3: two equal, not all */
    int targets[GC * TC];
    double logp[GC * TC];
    for (int k = 0; k < GC * TC; k++) targets[k] = k % TC == 0 ? TS_IGNORE : 1, logp[k] = -0.1 * (k + 1);
    ts_grpo_term term[GC * TC];
    for (int sc = 0; sc < 2; sc++) {
        ts_grpo_opts o = ts_grpo_opts_default();
        o.scale_by_std = sc;
        o.beta = 0.0f;
        double want[4 * GC], got[GC];
        unsigned char zv[4];
        ts_grpo_advantages(want, zv, r, 4, GC, o.scale_by_std, o.adv_eps);
        for (int g = 0; g < 4; g++) {
            int z = ts_grpo_coefficients(got, term, r + g * GC, NULL, targets, logp, logp, NULL, GC, TC, &o);
            assert_int_equal(z, zv[g]);
            assert_memory_equal(got, want + g * GC, sizeof got);
            for (int k = 0; k < GC * TC; k++) {
                if (targets[k] == TS_IGNORE) assert_true(term[k].coef == 0.0 && term[k].J == 0.0 && term[k].rho == 0.0);
                else assert_true(term[k].coef == -got[k / TC] && term[k].rho == 1.0 && !term[k].clipped);
            }
        }
    }
}

/* ---- the per-token gradient from the logits ------------------------------ */

typedef struct {
    float *logits;
    const ts_rollout *r;
    const ts_grpo_opts *o;
    const unsigned char *clip0; /* the clip state where the gradient was taken */
    unsigned char *clip;
    int V, flips;
} logits_ctx;

static double logits_loss(void *p) {
    logits_ctx *c = p;
    ts_grpo_stats st;
    ts_grpo_tokens tok = {.clipped = c->clip};
    assert_int_equal(ts_grpo_loss(&st, NULL, &tok, c->logits, c->r, c->o, c->V), TS_OK);
    for (size_t k = 0; k < nrows(c->r); k++) c->flips += c->clip[k] != c->clip0[k];
    return st.loss;
}

/* Random logits; π_old and π_ref differ from π_θ by random log-ratios, set
 * away from the clip's kinks by more than the finite differences move them. */
static void logits_setup(float *logits, ts_rollout *r, const ts_grpo_opts *o, int V, uint64_t seed) {
    tu_fill(logits, nrows(r) * V, 3.0f, seed);
    double logp[NT * 2];
    assert_true(nrows(r) <= NT * 2);
    ts_grpo_stats st;
    ts_grpo_tokens tok = {.logp = logp};
    int has_old = r->has_old;
    r->has_old = 0;
    ts_grpo_opts plain = *o;
    plain.beta = 0;
    assert_int_equal(ts_grpo_loss(&st, NULL, &tok, logits, r, &plain, V), TS_OK);
    r->has_old = has_old;
    ts_rng g;
    ts_rng_seed(&g, seed + 100, TS_STREAM_TEST);
    double hi = log(1.0 + o->eps_high), lo = log(1.0 - o->eps_low);
    for (size_t k = 0; k < nrows(r); k++) {
        if (r->targets[k] == TS_IGNORE) continue;
        double d;
        do d = 1.2 * (ts_rng_uniform(&g) - 0.5); /* log ρ in ±0.6 */
        while (fabs(d - hi) < 0.1 || fabs(d - lo) < 0.1);
        r->old_logp[k] = logp[k] - d;
        if (r->ref_logp) r->ref_logp[k] = logp[k] + 1.5 * (ts_rng_uniform(&g) - 0.5);
    }
}

/* dL/dlogits against finite differences, for each normalisation, with the
 * clip active on some tokens and the KL on: 1e-6 relative at h = 3e-2, far
 * tighter than the op-level cross-entropy check of test_ch02_open (1e-4),
 * since everything after the float32 logits runs in double (~1e-7 seen).
 * Every log ρ starts 0.1 from a kink, more than a logit step of 2h can move
 * it, and the clip flips during the differences are counted: none. */
static void gradient_from_logits(void **state) {
    (void)state;
    enum { V = 7 };
    const ts_grpo_norm norms[3] = {TS_GRPO_NORM_SEQUENCE, TS_GRPO_NORM_TOKEN, TS_GRPO_NORM_CONSTANT};
    for (int drop = 0; drop < 2; drop++)
        for (int ni = 0; ni < 3; ni++) {
            ts_rollout r;
            random_rollout(&r, P, V, 1, 21);
            if (drop)
                for (int j = 0; j < G; j++) r.rewards[G + j] = 1.0f; /* group 1: zero variance, dropped */
            r.has_old = 1;
            ts_grpo_opts o = ts_grpo_opts_default();
            o.eps_high = 0.28f; /* clip-higher */
            o.beta = 0.3f;
            o.norm = norms[ni];
            o.max_len = T;
            o.drop_zero_var = drop;
            float logits[NT * V], d[NT * V];
            logits_setup(logits, &r, &o, V, 22);
            unsigned char clip0[NT], clip[NT];
            memset(d, 0, sizeof d);
            ts_grpo_stats st;
            ts_grpo_tokens tok = {.clipped = clip0};
            assert_int_equal(ts_grpo_loss(&st, d, &tok, logits, &r, &o, V), TS_OK);
            int n_clipped = 0;
            for (int k = 0; k < NT; k++) n_clipped += clip0[k];
            assert_true(n_clipped >= 1 && n_clipped < (int)ts_rollout_tokens(&r));
            assert_true(st.ratio_min < 1 - o.eps_low && st.ratio_max > 1 + o.eps_high);
            logits_ctx c = {logits, &r, &o, clip0, clip, V, 0};
            ts_gc_tensor t = {"grpo.d_logits", logits, d, NT * V};
            double worst = ts_gradcheck(logits_loss, &c, &t, 1, 3e-2, 0, NULL, NULL);
            printf("  %s normalisation%s: %d of %ld tokens clipped, worst relative error %.2e\n",
                   ni == 0 ? "sequence" : ni == 1 ? "token" : "constant", drop ? ", zero-variance group dropped" : "",
                   n_clipped, ts_rollout_tokens(&r), worst);
            assert_int_equal(c.flips, 0);
            assert_true(worst <= 1e-6);
            ts_rollout_free(&r);
        }
}

/* ---- the whole model ----------------------------------------------------- */

typedef struct {
    ts_model *m;
    const ts_rollout *r;
    const ts_grpo_opts *o;
    const unsigned char *clip0;
    unsigned char *clip;
    int flips;
} model_ctx;

static double model_loss(void *p) {
    model_ctx *c = p;
    assert_int_equal(ts_model_forward_logits(c->m, c->r->tokens, c->r->P * c->r->G, c->r->T), TS_OK);
    ts_grpo_stats st;
    ts_grpo_tokens tok = {.clipped = c->clip};
    assert_int_equal(ts_grpo_loss(&st, NULL, &tok, c->m->logits, c->r, c->o, c->m->cfg.vocab_size), TS_OK);
    for (size_t k = 0; k < nrows(c->r); k++) c->flips += c->clip[k] != c->clip0[k];
    return st.loss;
}

/* The GRPO gradient of every parameter (ts_grpo_step: forward, loss, backward
 * from d_logits) against finite differences through the model, with π_old and
 * π_ref frozen models whose weights were perturbed (so ρ ≠ 1 and the clip
 * fires on some tokens), at chapter 2's whole-model bound: 1e-3 relative.
 * The step is h = 4e-3, not chapter 2's 2e-3: GRPO's gradients are ~10×
 * smaller than a mean cross-entropy's (weights A·ρ/D), so the float32
 * forward's rounding noise over h weighs more (1.1e-3 at 2e-3, 5e-4 at 4e-3);
 * the h⁴ truncation error overtakes it only beyond ~6e-3. A seed is used only
 * when every token with A ≠ 0 has log ρ at least 0.02 from a kink, and the
 * check counts every clip flip during the differences: there must be none
 * (at h = 1e-2 there are, and the check fails). */
static void model_gradient(ts_grpo_norm norm, int drop) {
    ts_config cfg = tiny();
    int V = cfg.vocab_size;
    ts_model m, old, ref;
    ts_rollout r;
    ts_grpo_opts o = ts_grpo_opts_default();
    o.eps_high = 0.28f;
    o.beta = 0.2f;
    o.norm = norm;
    o.max_len = T;
    o.drop_zero_var = drop;
    double logp[NT];
    double margin = 0;
    uint64_t seed = 40;
    for (;; seed++) {
        make(&m, &cfg, TS_MODEL_GRADS, seed);
        random_rollout(&r, P, V, 1, seed);
        if (drop)
            for (int j = 0; j < G; j++) r.rewards[j] = 0.0f; /* group 0: zero variance, dropped */
        perturbed_copy(&old, &m, 0.05f, seed + 1);
        perturbed_copy(&ref, &m, 0.05f, seed + 2);
        assert_int_equal(ts_grpo_token_logp(&old, &r, r.old_logp), TS_OK);
        assert_int_equal(ts_grpo_token_logp(&ref, &r, r.ref_logp), TS_OK);
        r.has_old = 1;
        ts_model_free(&old);
        ts_model_free(&ref);
        assert_int_equal(ts_grpo_token_logp(&m, &r, logp), TS_OK);
        margin = clip_margin(&r, logp, &o);
        if (margin >= 0.02) break;
        ts_rollout_free(&r);
        ts_model_free(&m);
        assert_true(seed < 140);
    }
    unsigned char clip0[NT], clip[NT];
    ts_grpo_stats st;
    float loss;
    ts_model_zero_grad(&m);
    assert_int_equal(ts_grpo_step(&m, &r, &o, &loss, &st), TS_OK);
    {
        ts_grpo_stats st2;
        ts_grpo_tokens tok = {.clipped = clip0};
        assert_int_equal(ts_grpo_loss(&st2, NULL, &tok, m.logits, &r, &o, V), TS_OK);
        assert_true(st2.loss == st.loss && (float)st.loss == loss);
    }
    int n_clipped = 0;
    for (int k = 0; k < NT; k++) n_clipped += clip0[k];
    assert_true(n_clipped >= 1);
    assert_true(st.kl > 0);
    ts_gc_tensor gt[64];
    ts_gc_result res[64];
    int n = m.params.count;
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        ts_param *t = &m.params.params[i];
        gt[i] = (ts_gc_tensor){t->name, m.params.data + t->offset, m.params.grad + t->offset, t->numel};
    }
    model_ctx c = {&m, &r, &o, clip0, clip, 0};
    double worst = ts_gradcheck(model_loss, &c, gt, n, 4e-3, 0, res, getenv("GRPO_REPORT") ? stdout : NULL);
    printf("  %s normalisation%s: seed %llu, clip margin %.3f, %d of %ld tokens clipped, ρ in [%.2f, %.2f], KL %.3f, "
           "worst relative error %.2e over %d tensors\n",
           norm == TS_GRPO_NORM_SEQUENCE ? "sequence" : norm == TS_GRPO_NORM_TOKEN ? "token" : "constant",
           drop ? ", a zero-variance group dropped" : "", (unsigned long long)seed, margin, n_clipped,
           ts_rollout_tokens(&r), st.ratio_min, st.ratio_max, st.kl, worst, n);
    assert_int_equal(c.flips, 0);
    for (int i = 0; i < n; i++)
        if (!(res[i].grad_scale > 0)) fail_msg("%s received no gradient", gt[i].name);
    assert_true(worst <= 1e-3);
    ts_rollout_free(&r);
    ts_model_free(&m);
}

static void model_gradient_sequence(void **state) {
    (void)state;
    model_gradient(TS_GRPO_NORM_SEQUENCE, 0);
    model_gradient(TS_GRPO_NORM_SEQUENCE, 1);
}

static void model_gradient_token(void **state) {
    (void)state;
    model_gradient(TS_GRPO_NORM_TOKEN, 0);
}

static void model_gradient_constant(void **state) {
    (void)state;
    model_gradient(TS_GRPO_NORM_CONSTANT, 1);
}

/* ---- equal rewards: no update -------------------------------------------- */

static int all_zero_bits(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], 4);
        if (b) return 0;
    }
    return 1;
}

/* Every group's rewards equal (π_old ≠ π_θ, so ρ ≠ 1): A = 0 on every token, and
 * with β = 0 the gradient of every parameter is exactly zero, bit for bit, for
 * each normalisation; with β > 0 the KL alone still pulls (non-zero) unless the
 * zero-variance groups are dropped, which leaves nothing at all. */
static void equal_rewards_give_no_update(void **state) {
    (void)state;
    ts_config cfg = tiny();
    int V = cfg.vocab_size;
    ts_model m, old, ref;
    make(&m, &cfg, TS_MODEL_GRADS, 50);
    ts_rollout r;
    random_rollout(&r, P, V, 1, 51);
    for (int i = 0; i < NSEQ; i++) r.rewards[i] = i < G ? 1.0f : 0.25f;
    perturbed_copy(&old, &m, 0.15f, 52);
    perturbed_copy(&ref, &m, 0.15f, 53);
    assert_int_equal(ts_grpo_token_logp(&old, &r, r.old_logp), TS_OK);
    assert_int_equal(ts_grpo_token_logp(&ref, &r, r.ref_logp), TS_OK);
    r.has_old = 1;
    size_t numel = m.params.numel;
    const ts_grpo_norm norms[3] = {TS_GRPO_NORM_SEQUENCE, TS_GRPO_NORM_TOKEN, TS_GRPO_NORM_CONSTANT};
    for (int ni = 0; ni < 3; ni++) {
        ts_grpo_opts o = ts_grpo_opts_default();
        o.norm = norms[ni];
        o.max_len = T;
        ts_grpo_stats st;
        float loss;
        /* β = 0: nothing */
        o.beta = 0;
        ts_model_zero_grad(&m);
        assert_int_equal(ts_grpo_step(&m, &r, &o, &loss, &st), TS_OK);
        assert_true(st.zero_var_frac == 1.0 && st.ratio_min != 1.0);
        assert_true(all_zero_bits(m.params.grad, numel));
        assert_true(loss == 0.0f);
        /* β > 0: the KL still pulls toward the reference */
        o.beta = 0.1f;
        ts_model_zero_grad(&m);
        assert_int_equal(ts_grpo_step(&m, &r, &o, &loss, &st), TS_OK);
        assert_false(all_zero_bits(m.params.grad, numel));
        assert_true(loss > 0 && st.kl > 0);
        /* ... unless the zero-variance groups leave the batch */
        o.drop_zero_var = 1;
        ts_model_zero_grad(&m);
        assert_int_equal(ts_grpo_step(&m, &r, &o, &loss, &st), TS_OK);
        assert_true(all_zero_bits(m.params.grad, numel));
        assert_true(loss == 0.0f && st.groups_used == 0 && st.tokens_used == 0 && st.kl > 0);
    }
    ts_model_free(&old);
    ts_model_free(&ref);
    ts_rollout_free(&r);
    ts_model_free(&m);
}

/* A dropped group contributes nothing: the batch {zero-variance group, group B}
 * gives group B's rows exactly the d_logits, and the loss, of the batch {group B}
 * alone, and the dropped rows get exactly zero; for each normalisation. */
static void dropped_group_contributes_nothing(void **state) {
    (void)state;
    enum { V = 7 };
    const ts_grpo_norm norms[3] = {TS_GRPO_NORM_SEQUENCE, TS_GRPO_NORM_TOKEN, TS_GRPO_NORM_CONSTANT};
    for (int ni = 0; ni < 3; ni++) {
        ts_rollout two, one;
        random_rollout(&two, 2, V, 1, 60);
        for (int j = 0; j < G; j++) two.rewards[j] = 0.5f;
        two.has_old = 1;
        ts_grpo_opts o = ts_grpo_opts_default();
        o.eps_high = 0.28f;
        o.beta = 0.3f;
        o.norm = norms[ni];
        o.max_len = T;
        o.drop_zero_var = 1;
        float logits[NT * V], d2[NT * V], d1[NT / 2 * V];
        logits_setup(logits, &two, &o, V, 61);
        /* group B alone */
        assert_int_equal(ts_rollout_alloc(&one, 1, G, T, 1), TS_OK);
        size_t half = (size_t)G * T;
        memcpy(one.tokens, two.tokens + half, half * sizeof(int));
        memcpy(one.targets, two.targets + half, half * sizeof(int));
        memcpy(one.old_logp, two.old_logp + half, half * sizeof(double));
        memcpy(one.ref_logp, two.ref_logp + half, half * sizeof(double));
        memcpy(one.prompt_len, two.prompt_len + G, G * sizeof(int));
        memcpy(one.completion_len, two.completion_len + G, G * sizeof(int));
        memcpy(one.rewards, two.rewards + G, G * sizeof(float));
        one.has_old = 1;
        memset(d2, 0, sizeof d2);
        memset(d1, 0, sizeof d1);
        ts_grpo_stats s2, s1;
        assert_int_equal(ts_grpo_loss(&s2, d2, NULL, logits, &two, &o, V), TS_OK);
        assert_int_equal(ts_grpo_loss(&s1, d1, NULL, logits + half * V, &one, &o, V), TS_OK);
        assert_true(s2.zero_var_frac == 0.5 && s2.groups_used == 1 && s1.groups_used == 1);
        assert_true(s2.loss == s1.loss && s1.loss != 0.0);
        assert_true(all_zero_bits(d2, half * V));
        assert_memory_equal(d2 + half * V, d1, half * V * sizeof(float));
        /* and without the drop the zero-variance group's KL term is there */
        o.drop_zero_var = 0;
        memset(d2, 0, sizeof d2);
        assert_int_equal(ts_grpo_loss(&s2, d2, NULL, logits, &two, &o, V), TS_OK);
        assert_false(all_zero_bits(d2, half * V));
        ts_rollout_free(&one);
        ts_rollout_free(&two);
    }
}

/* ---- μ = 1, β = 0: REINFORCE with a group baseline ------------------------ */

/* With π_old = π_θ (μ = 1) ρ = 1 on every token, so even a clip of ±0.01 never
 * fires, and with β = 0 GRPO's gradient is REINFORCE's,
 *     ∇L = −Σ_i (A_i/D_i) Σ_t ∇log π(o_it),   A_i = r_i − mean of its group (over std + ε),
 * which is ts_loss_crossentropy() with weight +A_i/D_i on completion i's tokens
 * (−log π is the cross-entropy: minimising A·(−log π) raises log π where A > 0)
 * and Z = 1. Computed here independently of grpo.c, for each normalisation,
 * with π_old implicit (has_old = 0) and as a frozen copy of the same weights:
 * the same bits. */
static void mu1_beta0_is_reinforce(void **state) {
    (void)state;
    ts_config cfg = tiny();
    int V = cfg.vocab_size;
    ts_model m, old;
    make(&m, &cfg, TS_MODEL_GRADS, 70);
    ts_rollout r;
    random_rollout(&r, P, V, 0, 71);
    r.rewards[2] = 0.5f; /* three reward levels in group 0 */
    assert_int_equal(ts_model_create(&old, &cfg, TS_MODEL_FROZEN), TS_OK);
    memcpy(old.params.data, m.params.data, m.params.numel * sizeof(float));
    size_t bytes = m.params.numel * sizeof(float);
    float *want = malloc(bytes), *w = malloc(NT * sizeof(float)), *d = malloc((size_t)NT * V * sizeof(float));
    const ts_grpo_norm norms[3] = {TS_GRPO_NORM_SEQUENCE, TS_GRPO_NORM_TOKEN, TS_GRPO_NORM_CONSTANT};
    for (int ni = 0; ni < 3; ni++) {
        /* REINFORCE by the textbook: the group baseline and scale, the normaliser D_i */
        double A[NSEQ];
        for (int g = 0; g < P; g++) {
            double mean = 0, var = 0;
            for (int j = 0; j < G; j++) mean += r.rewards[g * G + j];
            mean /= G;
            for (int j = 0; j < G; j++) var += (r.rewards[g * G + j] - mean) * (r.rewards[g * G + j] - mean);
            for (int j = 0; j < G; j++) A[g * G + j] = (r.rewards[g * G + j] - mean) / (sqrt(var / G) + 1e-4);
        }
        long total = ts_rollout_tokens(&r);
        for (int i = 0; i < NSEQ; i++) {
            double D = ni == 0 ? (double)NSEQ * r.completion_len[i] : ni == 1 ? (double)total : (double)NSEQ * T;
            for (int t = 0; t < T; t++) w[i * T + t] = r.targets[i * T + t] == TS_IGNORE ? 0.0f : (float)(A[i] / D);
        }
        ts_model_zero_grad(&m);
        assert_int_equal(ts_model_forward_logits(&m, r.tokens, NSEQ, T), TS_OK);
        memset(d, 0, (size_t)NT * V * sizeof(float));
        ts_ce_result ce;
        assert_int_equal(ts_loss_crossentropy(&ce, d, NULL, m.logits, r.targets, w, 1.0, NT, V), TS_OK);
        assert_int_equal(ts_model_backward_from(&m, d, NULL, 0.0f), TS_OK);
        memcpy(want, m.params.grad, bytes);
        assert_false(all_zero_bits(want, m.params.numel));

        ts_grpo_opts o = ts_grpo_opts_default();
        o.beta = 0;
        o.eps_low = o.eps_high = 0.01f;
        o.norm = norms[ni];
        o.max_len = T;
        for (int has_old = 0; has_old < 2; has_old++) {
            r.has_old = has_old;
            if (has_old) assert_int_equal(ts_grpo_token_logp(&old, &r, r.old_logp), TS_OK);
            ts_grpo_stats st;
            float loss;
            ts_model_zero_grad(&m);
            assert_int_equal(ts_grpo_step(&m, &r, &o, &loss, &st), TS_OK);
            assert_true(st.ratio_min == 1.0 && st.ratio_max == 1.0 && st.clip_frac == 0.0);
            assert_memory_equal(want, m.params.grad, bytes);
        }
    }
    printf("  REINFORCE with a group baseline = GRPO at mu = 1, beta = 0: the same bits, 3 normalisations\n");
    free(want);
    free(w);
    free(d);
    ts_rollout_free(&r);
    ts_model_free(&old);
    ts_model_free(&m);
}

/* ---- the normalisations by hand ------------------------------------------ */

/* One group, rewards {1,0,0,0}, completions of 2, 4, 1 and 3 tokens (10 in all),
 * σ = √(3/16), A = {0.75, −0.25, −0.25, −0.25}/(σ + ε). At ρ = 1 (μ = 1, β = 0):
 *   per completion: L = −(1/4)Σ_i (1/|o_i|)·|o_i|·A_i = −mean A = 0
 *   token-level:    L = −Σ_i |o_i|·A_i / 10 = −(2·0.75 − 8·0.25)/10/(σ+ε) = 0.05/(σ+ε)
 *   Dr. GRPO, L_max = 6: L = −Σ_i |o_i|·A_i / (4·6) = 0.5/24/(σ+ε)
 * and every token's weight is A_i/D_i with D_i = 4|o_i|, 10, 24. Then with ρ ≠ 1
 * (given log-ratios ±0.1, ±0.4 on alternate tokens, clip 0.2/0.28) each token's
 * weight is A_i·ρ or 0 where clipped, over the same D_i, and its term of the
 * loss min(ρA, clip(ρ)A). */
static void normalisations_by_hand(void **state) {
    (void)state;
    enum { V = 5, TT = 8 };
    ts_rollout r;
    assert_int_equal(ts_rollout_alloc(&r, 1, 4, TT, 0), TS_OK);
    const int len[4] = {2, 4, 1, 3}, prompt[2] = {1, 2}, comp[4] = {3, 4, 0, 1};
    const float rew[4] = {1, 0, 0, 0};
    for (int i = 0; i < 4; i++) assert_int_equal(ts_rollout_set(&r, i, prompt, 2, comp, len[i], rew[i], 0), TS_OK);
    assert_int_equal(ts_rollout_tokens(&r), 10);
    float logits[4 * TT * V], weight[4 * TT];
    double logp[4 * TT];
    tu_fill(logits, 4 * TT * V, 2.0f, 80);
    double s = sqrt(0.1875) + 1e-4, A[4] = {0.75 / s, -0.25 / s, -0.25 / s, -0.25 / s};
    const double want_loss[3] = {0.0, 0.05 / s, 0.5 / 24 / s};
    const ts_grpo_norm norms[3] = {TS_GRPO_NORM_SEQUENCE, TS_GRPO_NORM_TOKEN, TS_GRPO_NORM_CONSTANT};
    for (int ni = 0; ni < 3; ni++) {
        ts_grpo_opts o = ts_grpo_opts_default();
        o.beta = 0;
        o.eps_high = 0.28f;
        o.norm = norms[ni];
        o.max_len = 6;
        ts_grpo_stats st;
        ts_grpo_tokens tok = {.weight = weight, .logp = logp};
        r.has_old = 0;
        assert_int_equal(ts_grpo_loss(&st, NULL, &tok, logits, &r, &o, V), TS_OK);
        assert_true(fabs(st.loss - want_loss[ni]) <= 1e-12);
        assert_true(st.completion_len == 2.5 && st.tokens_used == 10 && st.groups_used == 1);
        assert_true(st.reward_mean == 0.25 && st.zero_var_frac == 0.0 && isnan(st.kl));
        /* the policy's entropy −Σ p log p, averaged over the 10 completion positions */
        double H = 0;
        for (int k = 0; k < 4 * TT; k++) {
            if (r.targets[k] == TS_IGNORE) continue;
            double Z = 0, h = 0;
            for (int v = 0; v < V; v++) Z += exp(logits[k * V + v]);
            for (int v = 0; v < V; v++) {
                double p = exp(logits[k * V + v]) / Z;
                h -= p * log(p);
            }
            H += h / 10;
        }
        assert_true(fabs(st.entropy - H) <= 1e-12 && H > 0.5 && H < log(V));
        for (int i = 0; i < 4; i++) {
            double D = ni == 0 ? 4.0 * len[i] : ni == 1 ? 10.0 : 24.0;
            for (int t = 0; t < TT; t++) {
                int k = i * TT + t;
                double want = r.targets[k] == TS_IGNORE ? 0.0 : A[i] / D;
                assert_true(fabs(weight[k] - want) <= 1e-7 * fabs(want));
            }
        }
        /* ρ ≠ 1 */
        const double delta[4] = {0.1, -0.4, 0.4, -0.1};
        for (int k = 0; k < 4 * TT; k++) r.old_logp[k] = logp[k] - delta[k % 4];
        r.has_old = 1;
        assert_int_equal(ts_grpo_loss(&st, NULL, &tok, logits, &r, &o, V), TS_OK);
        double loss = 0;
        int clipped = 0;
        for (int i = 0; i < 4; i++) {
            double D = ni == 0 ? 4.0 * len[i] : ni == 1 ? 10.0 : 24.0;
            for (int t = 0; t < TT; t++) {
                int k = i * TT + t;
                if (r.targets[k] == TS_IGNORE) {
                    assert_true(weight[k] == 0.0f);
                    continue;
                }
                double rho = exp(logp[k] - r.old_logp[k]);
                /* A > 0 clips above 1.28, A < 0 below 0.8: e^0.4 = 1.49 and e^−0.4 = 0.67 clip, e^±0.1 never */
                int clip = (A[i] > 0 && rho > 1.28) || (A[i] < 0 && rho < 0.8);
                clipped += clip;
                double rc = rho > 1.28 ? 1.28 : rho < 0.8 ? 0.8 : rho;
                loss -= fmin(rho * A[i], rc * A[i]) / D;
                double want = clip ? 0.0 : A[i] * rho / D;
                assert_true(fabs(weight[k] - want) <= 1e-6 * fabs(A[i] / D));
            }
        }
        assert_true(clipped > 0 && fabs(st.clip_frac - clipped / 10.0) <= 1e-15);
        assert_true(fabs(st.loss - loss) <= 1e-6 * fabs(loss));
    }
    ts_rollout_free(&r);
}

/* ---- the k3 KL ----------------------------------------------------------- */

/* k3 = π_ref/π − log(π_ref/π) − 1 ≥ 0, = 0 exactly where π_ref = π (then its
 * gradient is exactly 0 too), equal to e^u − u − 1 for u = log π_ref − log π,
 * with the log-ratio clamped at ±20 (gradient 0 beyond); and the KL-only loss
 * (equal rewards: A = 0) against finite differences from the logits. */
static void k3_properties_and_gradient(void **state) {
    (void)state;
    enum { V = 6 };
    ts_rollout r;
    random_rollout(&r, P, V, 1, 90);
    for (int i = 0; i < NSEQ; i++) r.rewards[i] = 1.0f; /* A = 0: the KL alone */
    float logits[NT * V], d[NT * V], k3[NT], weight[NT];
    double logp[NT];
    tu_fill(logits, NT * V, 3.0f, 91);
    ts_grpo_opts o = ts_grpo_opts_default();
    o.beta = 0.5f;
    ts_grpo_stats st;
    ts_grpo_tokens tok = {.weight = weight, .logp = logp, .k3 = k3};
    r.has_old = 0;
    assert_int_equal(ts_grpo_loss(&st, NULL, &tok, logits, &r, &o, V), TS_OK);
    /* π_ref = π_θ: k3 and its gradient are exactly 0 */
    memcpy(r.ref_logp, logp, sizeof logp);
    memset(d, 0, sizeof d);
    assert_int_equal(ts_grpo_loss(&st, d, &tok, logits, &r, &o, V), TS_OK);
    assert_true(st.kl == 0.0 && st.loss == 0.0);
    assert_true(all_zero_bits(k3, NT) && all_zero_bits(weight, NT));
    /* π_ref ≠ π_θ: k3 = e^u − u − 1 > 0 */
    ts_rng g;
    ts_rng_seed(&g, 92, TS_STREAM_TEST);
    for (int k = 0; k < NT; k++) r.ref_logp[k] = logp[k] + 4.0 * (ts_rng_uniform(&g) - 0.5);
    memset(d, 0, sizeof d);
    assert_int_equal(ts_grpo_loss(&st, d, &tok, logits, &r, &o, V), TS_OK);
    double kl = 0;
    for (int k = 0; k < NT; k++) {
        if (r.targets[k] == TS_IGNORE) continue;
        double u = r.ref_logp[k] - logp[k], want = exp(u) - u - 1;
        assert_true(k3[k] > 0 && fabs(k3[k] - want) <= 1e-6 * want);
        /* weight = β(π_ref/π − 1)/D: the KL pulls log π up where π_ref > π */
        assert_true((weight[k] > 0) == (u > 0));
        kl += want;
    }
    assert_true(fabs(st.kl - kl / ts_rollout_tokens(&r)) <= 1e-6 * st.kl);
    unsigned char clip0[NT] = {0}, clip[NT];
    logits_ctx c = {logits, &r, &o, clip0, clip, V, 0};
    ts_gc_tensor t = {"k3.d_logits", logits, d, NT * V};
    double worst = ts_gradcheck(logits_loss, &c, &t, 1, 3e-2, 0, NULL, NULL);
    printf("  k3 KL alone: mean %.4f, worst relative error of its gradient %.2e\n", st.kl, worst);
    assert_true(worst <= 1e-6); /* the bound of gradient_from_logits */
    /* the clamp: u = 30 counts as 20, and moves nothing */
    int k0 = 0;
    while (r.targets[k0] == TS_IGNORE) k0++;
    r.ref_logp[k0] = logp[k0] + 30.0;
    assert_int_equal(ts_grpo_loss(&st, NULL, &tok, logits, &r, &o, V), TS_OK);
    assert_true(k3[k0] == (float)(exp(20.0) - 21.0) && weight[k0] == 0.0f && isfinite(st.loss));
    ts_rollout_free(&r);
}

/* ---- the training loop's loss -------------------------------------------- */

typedef struct {
    const ts_rollout *r;
} fixed_rollouts;

static ts_status fixed_next(ts_batch_source *src, ts_batch *out) {
    const fixed_rollouts *f = src->ctx;
    return ts_rollout_to_batch(f->r, out);
}

/* ts_grpo_loop_loss()'s step is ts_grpo_step() (the same bits); it refuses a
 * batch that is not its rollout's; and the loop runs it: μ = 3 updates on one
 * rollout batch (π_old fixed at the first), the GRPO columns in the CSV, the
 * surrogate objective rising and the clip firing once the policy has moved. */
static void loop_loss(void **state) {
    (void)state;
    ts_config cfg = tiny();
    int V = cfg.vocab_size;
    ts_model m;
    make(&m, &cfg, TS_MODEL_TRAIN, 100);
    ts_rollout r;
    random_rollout(&r, P, V, 0, 101);
    assert_int_equal(ts_grpo_token_logp(&m, &r, r.old_logp), TS_OK);
    r.has_old = 1;
    ts_grpo_loss_ctx ctx = {.opts = ts_grpo_opts_default(), .rollout = &r};
    ctx.opts.beta = 0;
    ts_loss l = ts_grpo_loop_loss(&ctx);
    assert_int_equal(l.n_stats, TS_GRPO_N_STATS);
    ts_batch b;
    assert_int_equal(ts_batch_alloc(&b, NSEQ, T, 0), TS_OK);
    assert_int_equal(ts_rollout_to_batch(&r, &b), TS_OK);
    size_t bytes = m.params.numel * sizeof(float);
    float loss, loss2, *want = malloc(bytes);
    double stats[TS_GRPO_N_STATS];
    ts_grpo_stats st;
    ts_model_zero_grad(&m);
    assert_int_equal(ts_grpo_step(&m, &r, &ctx.opts, &loss, &st), TS_OK);
    memcpy(want, m.params.grad, bytes);
    ts_model_zero_grad(&m);
    assert_int_equal(l.step(l.ctx, &m, &b, &loss2, stats), TS_OK);
    assert_memory_equal(want, m.params.grad, bytes);
    assert_true(loss == loss2 && stats[0] == st.reward_mean && stats[5] == st.entropy && isnan(stats[1]));
    b.tokens[3] = (b.tokens[3] + 1) % V;
    assert_int_equal(l.step(l.ctx, &m, &b, &loss2, stats), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "not the current rollout batch"));
    ts_batch_free(&b);

    fixed_rollouts f = {&r};
    ts_batch_source src = {.next = fixed_next, .ctx = &f, .B = NSEQ, .T = T};
    char csv[256];
    snprintf(csv, sizeof csv, "%s/grpo.csv", tu_dir);
    ts_train_opts o = ts_train_opts_default();
    o.batch_size = NSEQ;
    o.seq_len = T;
    o.steps = 3;
    o.warmup = 0;
    o.lr = o.min_lr = 3e-2f;
    o.metrics_path = csv;
    o.quiet = 1;
    ts_trainer t = {.label = "grpo", .data = &src, .loss = l, .fingerprint = ts_train_fingerprint(&m, &o)};
    ts_train_result res;
    assert_int_equal(ts_train(&m, &t, &o, &res), TS_OK);
    assert_int_equal(res.steps_run, 3);
    /* after 3 updates the surrogate −L has risen, and the policy has moved past the clip somewhere */
    ts_grpo_stats after;
    assert_int_equal(ts_grpo_step(&m, &r, &ctx.opts, &loss2, &after), TS_OK);
    printf("  3 updates on one rollout batch: loss %.4f -> %.4f, rho in [%.3f, %.3f], clip fraction %.3f\n", st.loss,
           after.loss, after.ratio_min, after.ratio_max, after.clip_frac);
    assert_true(after.loss < st.loss && after.clip_frac > 0);
    FILE *fp = fopen(csv, "r");
    assert_non_null(fp);
    char head[512];
    assert_non_null(fgets(head, sizeof head, fp));
    fclose(fp);
    assert_non_null(strstr(head, "reward,kl,clip_frac,zero_var_frac,completion_len,entropy"));
    free(want);
    ts_rollout_free(&r);
    ts_model_free(&m);
}

/* ---- bad input ------------------------------------------------------------ */

static void bad_input_fails_cleanly(void **state) {
    (void)state;
    enum { V = 5 };
    ts_rollout r;
    int toks[T] = {1, 2, 3, 4, 1, 2, 3, 4};
    assert_int_equal(ts_rollout_alloc(&r, 0, G, T, 0), TS_ERR_ARG);
    random_rollout(&r, 1, V, 0, 110);
    assert_int_equal(ts_rollout_set(&r, 0, toks, 4, toks, 5, 1.0f, 0), TS_ERR_RANGE); /* 9 > T */
    assert_non_null(strstr(ts_last_error(), "sequence 0"));
    assert_int_equal(ts_rollout_set(&r, 1, toks, 2, toks, 0, 1.0f, 0), TS_ERR_RANGE); /* empty completion */
    assert_int_equal(ts_rollout_set(&r, 2, toks, 2, toks, 2, NAN, 0), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "reward"));
    assert_int_equal(ts_rollout_set(&r, G, toks, 2, toks, 2, 1.0f, 0), TS_ERR_ARG);
    float logits[G * T * V], d[G * T * V] = {0};
    tu_fill(logits, G * T * V, 1.0f, 111);
    ts_grpo_stats st;
    ts_grpo_opts o = ts_grpo_opts_default(); /* β = 0.04 but no reference */
    assert_int_equal(ts_grpo_loss(&st, d, NULL, logits, &r, &o, V), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "reference"));
    o.beta = 0;
    o.norm = TS_GRPO_NORM_CONSTANT;
    assert_int_equal(ts_grpo_loss(&st, d, NULL, logits, &r, &o, V), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "max_len"));
    o.norm = TS_GRPO_NORM_SEQUENCE;
    o.eps_low = 1.0f;
    assert_int_equal(ts_grpo_loss(&st, d, NULL, logits, &r, &o, V), TS_ERR_ARG);
    o.eps_low = 0.2f;
    r.completion_len[1]++;
    assert_int_equal(ts_grpo_loss(&st, d, NULL, logits, &r, &o, V), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "sequence 1"));
    r.completion_len[1]--;
    int k = 0;
    while (r.targets[k] == TS_IGNORE) k++;
    r.targets[k] = V;
    assert_int_equal(ts_grpo_loss(&st, d, NULL, logits, &r, &o, V), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "outside the vocabulary"));
    r.targets[k] = 1;
    r.has_old = 1;
    r.old_logp[k] = NAN;
    assert_int_equal(ts_grpo_loss(&st, d, NULL, logits, &r, &o, V), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "old log-prob"));
    r.rewards[0] = INFINITY;
    assert_int_equal(ts_grpo_loss(&st, d, NULL, logits, &r, &o, V), TS_ERR_RANGE);
    for (int i = 0; i < G * T * V; i++) assert_true(d[i] == 0.0f);
    /* a frozen policy cannot be trained */
    ts_config cfg = tiny();
    ts_model f;
    make(&f, &cfg, TS_MODEL_FROZEN, 112);
    ts_rollout ok;
    random_rollout(&ok, 1, cfg.vocab_size, 0, 113);
    float loss;
    assert_int_equal(ts_grpo_step(&f, &ok, &o, &loss, &st), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "frozen"));
    ts_model_free(&f);
    ts_rollout_free(&ok);
    ts_rollout_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rollout_layout),
        cmocka_unit_test(advantages_by_hand),
        cmocka_unit_test(coefficients_agree_with_advantages),
        cmocka_unit_test(gradient_from_logits),
        cmocka_unit_test(model_gradient_sequence),
        cmocka_unit_test(model_gradient_token),
        cmocka_unit_test(model_gradient_constant),
        cmocka_unit_test(equal_rewards_give_no_update),
        cmocka_unit_test(dropped_group_contributes_nothing),
        cmocka_unit_test(mu1_beta0_is_reinforce),
        cmocka_unit_test(normalisations_by_hand),
        cmocka_unit_test(k3_properties_and_gradient),
        cmocka_unit_test_setup_teardown(loop_loss, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test(bad_input_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

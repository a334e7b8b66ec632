/* The whole GRPO loss's gradient in double precision (the f64 build, mk/f64.mk),
 * in the state a real run reaches: μ > 1 and β > 0, so π_θ, π_old and π_ref
 * are three different sets of weights.
 *
 * The reference is the starting weights; one GRPO update (with AdamW) gives
 * π_old, whose log-probs are recorded as a run records them; a second update
 * on the same rollout gives π_θ. At π_θ the analytic gradient of every
 * parameter (ts_grpo_step: forward, loss, backward from d_logits) must match
 * central differences of the loss (forward + ts_grpo_loss) to 1e-6 of each
 * tensor's largest gradient, for each normalisation, with the clip active on
 * some tokens and the KL on. The clip makes the loss piecewise smooth: a
 * rollout is used when every token whose advantage is not 0 has log ρ at
 * least 1e-3 from a kink (the steps move it by ~1e-6), and every forward of
 * the check counts clip flips: there must be none. test_ch08_grpo.c runs the
 * float32 check (1e-3) with π_old and π_ref as perturbed copies. */
#include "gradcheck_model.h"

#include "core/optim.h"
#include "train/grpo.h"

#define GC_STEP 1e-4
#define GC_BOUND 1e-6

static ts_config tiny(int mla) {
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
    c.initializer_range = 0.4f;
    if (mla) { /* chapter 4's attention, as the chapter-8 models use */
        strcpy(c.model_type, "deepseek_v3");
        c.arch = TS_ARCH_DEEPSEEK_V3;
        c.q_lora_rank = 5;
        c.kv_lora_rank = 6;
        c.qk_nope_head_dim = 3;
        c.qk_rope_head_dim = 4;
        c.v_head_dim = 5;
    }
    return c;
}

enum { P = 2, G = 4, T = 8, NSEQ = P * G, NT = NSEQ * T };

static void random_rollout(ts_rollout *r, int V, uint64_t seed) {
    assert_int_equal(ts_rollout_alloc(r, P, G, T, 1), TS_OK);
    ts_rng g;
    ts_rng_seed(&g, seed, TS_STREAM_TEST);
    for (int i = 0; i < NSEQ; i++) {
        int prompt[T], completion[T];
        int p = 1 + (int)ts_rng_below(&g, 3), c = 1 + (int)ts_rng_below(&g, (uint64_t)(T - p));
        for (int k = 0; k < p; k++) prompt[k] = (int)ts_rng_below(&g, (uint64_t)V);
        for (int k = 0; k < c; k++) completion[k] = (int)ts_rng_below(&g, (uint64_t)V);
        float reward = (float)ts_rng_below(&g, 3); /* 0, 1 or 2 */
        if (i % G == 0) reward = 2.0f;
        if (i % G == 1) reward = 0.0f;
        assert_int_equal(ts_rollout_set(r, i, prompt, p, completion, c, reward, 0), TS_OK);
    }
}

typedef struct {
    ts_model *m;
    const ts_rollout *r;
    const ts_grpo_opts *o;
    const unsigned char *clip0;
    unsigned char clip[NT];
    int flips;
} loss_ctx;

static double grpo_loss(void *p) {
    loss_ctx *c = p;
    assert_int_equal(ts_model_forward_logits(c->m, c->r->tokens, NSEQ, T), TS_OK);
    ts_grpo_stats st;
    ts_grpo_tokens tok = {.clipped = c->clip};
    assert_int_equal(ts_grpo_loss(&st, NULL, &tok, c->m->logits, c->r, c->o, c->m->cfg.vocab_size), TS_OK);
    for (int k = 0; k < NT; k++) c->flips += c->clip[k] != c->clip0[k];
    return st.loss;
}

/* log ρ's distance to the clip's kinks over the tokens with A ≠ 0. */
static double clip_margin(const ts_rollout *r, const double *logp, const ts_grpo_opts *o) {
    double adv[NSEQ], worst = INFINITY, hi = log(1.0 + o->eps_high), lo = log(1.0 - o->eps_low);
    ts_grpo_advantages(adv, NULL, r->rewards, P, G, o->scale_by_std, o->adv_eps);
    for (int k = 0; k < NT; k++) {
        if (r->targets[k] == TS_IGNORE || adv[k / T] == 0.0) continue;
        double lr = logp[k] - r->old_logp[k];
        worst = fmin(worst, fmin(fabs(lr - hi), fabs(lr - lo)));
    }
    return worst;
}

/* One GRPO update of @p m on @p r: the gradient, then AdamW at step @p step. */
static void update(ts_model *m, const ts_rollout *r, const ts_grpo_opts *o, long step) {
    ts_adamw adamw = ts_adamw_defaults();
    ts_grpo_stats st;
    float loss;
    ts_model_zero_grad(m);
    assert_int_equal(ts_grpo_step(m, r, o, &loss, &st), TS_OK);
    adamw_step(&m->params, &adamw, 0.03f, step);
}

static void check(const char *name, int mla, ts_grpo_norm norm, int drop) {
    ts_config cfg = tiny(mla);
    ts_grpo_opts o = ts_grpo_opts_default();
    o.eps_low = 0.1f;
    o.eps_high = 0.15f;
    o.beta = 0.3f;
    o.norm = norm;
    o.max_len = T;
    o.drop_zero_var = drop;
    int used = -1, clipped = 0;
    double margin = 0, kl = 0;
    for (uint64_t seed = 1; seed < 200 && used < 0; seed++) {
        ts_model m, ref;
        ts_rollout r;
        assert_int_equal(ts_model_create(&m, &cfg, TS_MODEL_TRAIN), TS_OK); /* AdamW moments for two updates */
        ts_model_init_weights(&m, seed);
        assert_int_equal(ts_model_create(&ref, &cfg, TS_MODEL_FROZEN), TS_OK);
        memcpy(ref.params.data, m.params.data, m.params.numel * sizeof(float)); /* π_ref: the start */
        random_rollout(&r, cfg.vocab_size, seed);
        if (drop)
            for (int j = 0; j < G; j++) r.rewards[j] = 1.0f; /* group 0: zero variance */
        assert_int_equal(ts_grpo_token_logp(&ref, &r, r.ref_logp), TS_OK);
        update(&m, &r, &o, 1); /* an earlier rollout's update: π_old differs from π_ref */
        assert_int_equal(ts_grpo_token_logp(&m, &r, r.old_logp), TS_OK);
        r.has_old = 1;
        update(&m, &r, &o, 2); /* the first of μ updates on this rollout; the check is at the second */
        double logp[NT];
        assert_int_equal(ts_grpo_token_logp(&m, &r, logp), TS_OK);
        margin = clip_margin(&r, logp, &o);
        unsigned char clip0[NT];
        ts_grpo_stats st;
        float loss;
        ts_model_zero_grad(&m);
        assert_int_equal(ts_grpo_step(&m, &r, &o, &loss, &st), TS_OK);
        ts_grpo_tokens tok = {.clipped = clip0};
        ts_grpo_stats st2;
        assert_int_equal(ts_grpo_loss(&st2, NULL, &tok, m.logits, &r, &o, cfg.vocab_size), TS_OK);
        clipped = 0;
        for (int k = 0; k < NT; k++) clipped += clip0[k];
        if (margin >= 1e-3 && clipped >= 1 && st.ratio_min < 1 && st.ratio_max > 1) {
            used = (int)seed;
            kl = st.kl;
            assert_true(kl > 0);
            loss_ctx c = {.m = &m, .r = &r, .o = &o, .clip0 = clip0};
            tu_model_gc g;
            tu_gradcheck_model(&g, &m, grpo_loss, &c, GC_STEP, 0, NULL, getenv("TS_GC_REPORT") ? stdout : NULL);
            assert_int_equal(c.flips, 0);
            printf("gradcheck f64  GRPO %-34s seed %d: clip margin %.1e, %d tokens clipped, rho in [%.2f, %.2f], "
                   "KL %.3f, worst %.1e\n",
                   name, used, margin, clipped, st.ratio_min, st.ratio_max, kl, g.worst);
            if (!(g.worst <= GC_BOUND)) {
                for (int i = 0; i < g.n; i++)
                    if (!(g.r[i].max_rel <= GC_BOUND))
                        printf("  %s: error %.2e (gradient scale %.2e)\n", g.t[i].name, g.r[i].max_rel,
                               g.r[i].grad_scale);
                fail_msg("GRPO %s: worst relative error %.2e > %.0e", name, g.worst, GC_BOUND);
            }
        }
        ts_rollout_free(&r);
        ts_model_free(&ref);
        ts_model_free(&m);
    }
    assert_true(used > 0);
}

static void grpo_sequence(void **state) {
    (void)state;
    check("per completion, MHA", 0, TS_GRPO_NORM_SEQUENCE, 0);
    check("per completion, MLA", 1, TS_GRPO_NORM_SEQUENCE, 0);
}

static void grpo_token(void **state) {
    (void)state;
    check("token-level, a group dropped", 0, TS_GRPO_NORM_TOKEN, 1);
}

static void grpo_constant(void **state) {
    (void)state;
    check("Dr. GRPO constant", 1, TS_GRPO_NORM_CONSTANT, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grpo_sequence),
        cmocka_unit_test(grpo_token),
        cmocka_unit_test(grpo_constant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Chapter 9: logit distillation (src/train/distill.c, distill_trainer.c,
 * src/cli/cmd_distill.c).
 *
 * The loss against an independent computation (both KL directions, a row
 * whose probabilities underflow); its gradient against finite differences
 * from the logits (both directions, T = 1 and T ≠ 1, α in {0, 0.5, 1}) and
 * through a whole student under a frozen teacher; α = 1 is the masked
 * cross-entropy bit for bit; a teacher equal to the student gives zero KL and
 * zero KL gradient; masked positions get exactly zero gradient and may hold
 * anything; the frozen teacher holds no gradients; the training loop lowers
 * the KL and resumes exactly; tokenizers must match; bad input; the command. */
#include "posttrain_fixtures.h"

#include "core/gradcheck.h"
#include "io/fileio.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "train/distill.h"
#include "train/loss.h"
#include "train/sft.h"

/* ---- logits --------------------------------------------------------------- */

enum { N = 12, V = 11 };

/* Random student and teacher logits (the teacher sharper), targets with three ignored rows. */
static void rows(float *zs, float *zt, int *targets, uint64_t seed) {
    tu_fill(zs, (size_t)N * V, 2.0f, seed);
    tu_fill(zt, (size_t)N * V, 4.0f, seed + 1);
    ts_rng r;
    ts_rng_seed(&r, seed + 2, TS_STREAM_TEST);
    for (int n = 0; n < N; n++) targets[n] = (int)ts_rng_below(&r, V);
    targets[0] = targets[5] = targets[N - 1] = TS_IGNORE;
}

/* An independent reference: softmax by the definition in long double. */
static void ref_softmax(long double *p, const float *z, double T) {
    long double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) mx = fmaxl(mx, z[v] / (long double)T);
    for (int v = 0; v < V; v++) s += p[v] = expl(z[v] / (long double)T - mx);
    for (int v = 0; v < V; v++) p[v] /= s;
}

static double ref_kl(const float *zs, const float *zt, double T, int reverse) {
    long double ps[V], pt[V], kl = 0;
    ref_softmax(ps, zs, T);
    ref_softmax(pt, zt, T);
    for (int v = 0; v < V; v++) {
        long double a = reverse ? ps[v] : pt[v], b = reverse ? pt[v] : ps[v];
        if (a > 0) kl += a * logl(a / b);
    }
    return (double)kl;
}

/* The loss's parts against the definitions: the KL to 1e-12 (both run in
 * double or better), the cross-entropy to float32's rounding (the library's
 * cross-entropy op runs in float), the mix α·CE + (1−α)·T²·KL exactly as
 * written; agreement counted by hand. One row puts a logit 60 above the rest
 * at T = 1: its other probabilities underflow to ~1e-26 and the KL stays finite. */
static void loss_matches_definition(void **state) {
    (void)state;
    float zs[N * V], zt[N * V];
    int targets[N];
    rows(zs, zt, targets, 1);
    zt[3 * V + 4] = 60.0f; /* a teacher certain of token 4 */
    zs[7 * V + 2] = -60.0f;
    for (int reverse = 0; reverse < 2; reverse++)
        for (int ti = 0; ti < 2; ti++) {
            double T = ti ? 2.5 : 1.0;
            ts_kd_opts o = {.alpha = 0.3f, .temperature = (float)T, .reverse = reverse};
            ts_kd_result r;
            assert_int_equal(ts_kd_loss(&r, NULL, zs, zt, targets, &o, N, V), TS_OK);
            double kl = 0, ce = 0;
            int counted = 0, agree = 0;
            for (int n = 0; n < N; n++) {
                if (targets[n] == TS_IGNORE) continue;
                counted++;
                kl += ref_kl(zs + n * V, zt + n * V, T, reverse);
                long double p[V];
                ref_softmax(p, zs + n * V, 1.0);
                ce += (double)-logl(p[targets[n]]);
                int as = 0, at = 0;
                for (int v = 1; v < V; v++) {
                    if (zs[n * V + v] > zs[n * V + as]) as = v;
                    if (zt[n * V + v] > zt[n * V + at]) at = v;
                }
                agree += as == at;
            }
            kl /= counted;
            ce /= counted;
            assert_int_equal(r.n_counted, counted);
            if (!(fabs(r.kl - kl) <= 1e-12 * kl))
                fail_msg("%s KL at T = %g: %.15g, by definition %.15g", reverse ? "reverse" : "forward", T, r.kl, kl);
            if (!(fabs(r.ce - ce) <= 1e-6 * ce)) fail_msg("cross-entropy %.9g, by definition %.9g", r.ce, ce);
            assert_true(r.loss == 0.3f * r.ce + (1.0 - 0.3f) * T * T * r.kl);
            assert_true(r.agree == (double)agree / counted);
        }
    /* the two directions differ (KL is not symmetric) */
    ts_kd_opts f = {.alpha = 0, .temperature = 1, .reverse = 0}, b = {.alpha = 0, .temperature = 1, .reverse = 1};
    ts_kd_result rf, rb;
    assert_int_equal(ts_kd_loss(&rf, NULL, zs, zt, targets, &f, N, V), TS_OK);
    assert_int_equal(ts_kd_loss(&rb, NULL, zs, zt, targets, &b, N, V), TS_OK);
    assert_true(rf.kl > 0 && rb.kl > 0 && fabs(rf.kl - rb.kl) > 0.1 * rf.kl);
}

typedef struct {
    float *zs;
    const float *zt;
    const int *targets;
    ts_kd_opts o;
} logits_ctx;

static double logits_loss(void *p) {
    logits_ctx *c = p;
    ts_kd_result r;
    assert_int_equal(ts_kd_loss(&r, NULL, c->zs, c->zt, c->targets, &c->o, N, V), TS_OK);
    return r.loss;
}

/* dL/dstudent_logits against fourth-order finite differences, every entry,
 * for both directions, T in {1, 0.7, 2.5} and α in {0, 0.5, 1}. With α = 0 the
 * loss runs in double and only the float32 gradient's own rounding shows
 * (worst seen 1.1e-7): bound 1e-6, as chapter 8's GRPO check. With α > 0 the
 * cross-entropy op's float32 rounding over h = 3e-2 sets the floor (worst seen
 * 1.8e-5): bound 1e-4, chapter 2's bound for that op (test_ch02_open). Masked rows:
 * both gradients are exactly 0 there, and each row's gradient sums to 0 (a
 * constant added to a row's logits changes neither softmax). */
static void gradient_from_logits(void **state) {
    (void)state;
    const float alphas[3] = {0.0f, 0.5f, 1.0f}, temps[3] = {1.0f, 0.7f, 2.5f};
    for (int reverse = 0; reverse < 2; reverse++)
        for (int ti = 0; ti < 3; ti++)
            for (int ai = 0; ai < 3; ai++) {
                float zs[N * V], zt[N * V], d[N * V];
                int targets[N];
                rows(zs, zt, targets, 10 + (uint64_t)(ti * 3 + ai));
                ts_kd_opts o = {.alpha = alphas[ai], .temperature = temps[ti], .reverse = reverse};
                memset(d, 0, sizeof d);
                ts_kd_result r;
                assert_int_equal(ts_kd_loss(&r, d, zs, zt, targets, &o, N, V), TS_OK);
                for (int n = 0; n < N; n++) {
                    double s = 0, big = 0;
                    for (int v = 0; v < V; v++) s += d[n * V + v], big = fmax(big, fabs(d[n * V + v]));
                    if (targets[n] == TS_IGNORE) assert_true(big == 0.0);
                    else assert_true(big > 0 && fabs(s) <= 1e-6 * big);
                }
                logits_ctx c = {zs, zt, targets, o};
                ts_gc_tensor t = {"kd.d_logits", zs, d, N * V};
                ts_gc_result res;
                double worst = ts_gradcheck(logits_loss, &c, &t, 1, 3e-2, 0, &res, NULL);
                double bound = o.alpha > 0 ? 1e-4 : 1e-6;
                printf("  %s KL, T %.1f, alpha %.1f: loss %.5f (KL %.5f), worst relative error %.2e (bound %.0e)\n",
                       reverse ? "reverse" : "forward", (double)o.temperature, (double)o.alpha, r.loss, r.kl, worst,
                       bound);
                if (!(worst <= bound)) fail_msg("gradient wrong beyond %.0e", bound);
            }
}

/* α = 1: the loss and the gradient are ts_loss_crossentropy()'s mean over the
 * counted rows, bit for bit, whatever the teacher, temperature or direction. */
static void alpha_one_is_masked_cross_entropy(void **state) {
    (void)state;
    float zs[N * V], zt[N * V], d[N * V], want[N * V];
    int targets[N];
    rows(zs, zt, targets, 30);
    memset(want, 0, sizeof want);
    ts_ce_result ce;
    assert_int_equal(ts_loss_crossentropy(&ce, want, NULL, zs, targets, NULL, 0, N, V), TS_OK);
    for (int reverse = 0; reverse < 2; reverse++) {
        ts_kd_opts o = {.alpha = 1.0f, .temperature = 2.5f, .reverse = reverse};
        ts_kd_result r;
        memset(d, 0, sizeof d);
        assert_int_equal(ts_kd_loss(&r, d, zs, zt, targets, &o, N, V), TS_OK);
        float loss = (float)r.loss;
        assert_memory_equal(&loss, &ce.loss, sizeof loss);
        assert_memory_equal(d, want, sizeof d);
        assert_int_equal(r.n_counted, ce.n_counted);
        assert_true(r.kl > 0); /* the teacher term is still measured, it just has no weight */
    }
}

/* Teacher logits equal to the student's: KL exactly 0 in both directions, at
 * any T; with α = 0 no gradient at all (every bit 0); with α = 0.5 exactly the
 * gradient of the α·CE term alone. */
static void teacher_equal_to_student(void **state) {
    (void)state;
    float zs[N * V], zt[N * V], d[N * V], want[N * V];
    int targets[N];
    rows(zs, zt, targets, 40);
    for (int reverse = 0; reverse < 2; reverse++)
        for (int ti = 0; ti < 2; ti++) {
            ts_kd_opts o = {.alpha = 0.0f, .temperature = ti ? 2.5f : 1.0f, .reverse = reverse};
            ts_kd_result r;
            memset(d, 0, sizeof d);
            assert_int_equal(ts_kd_loss(&r, d, zs, zs, targets, &o, N, V), TS_OK);
            assert_true(r.kl == 0.0 && r.loss == 0.0 && r.agree == 1.0);
            for (int i = 0; i < N * V; i++) {
                uint32_t bits;
                memcpy(&bits, &d[i], 4);
                if (bits) fail_msg("entry %d of the KL gradient is %g, not +0", i, (double)d[i]);
            }
            o.alpha = 0.5f;
            memset(d, 0, sizeof d);
            memset(want, 0, sizeof want);
            assert_int_equal(ts_kd_loss(&r, d, zs, zs, targets, &o, N, V), TS_OK);
            ts_ce_result ce;
            assert_int_equal(ts_loss_crossentropy(&ce, want, NULL, zs, targets, NULL, r.n_counted / 0.5, N, V), TS_OK);
            assert_memory_equal(d, want, sizeof d);
            assert_true(r.kl == 0.0 && r.loss == 0.5 * r.ce);
        }
}

/* Masked rows (prompt, padding) are no part of the loss: their gradient is
 * exactly zero, and what the student or the teacher says there, even NaN,
 * changes no bit of the loss or of any row's gradient. */
static void masked_rows_are_inert(void **state) {
    (void)state;
    float zs[N * V], zt[N * V], d[N * V], d2[N * V];
    int targets[N];
    rows(zs, zt, targets, 50);
    for (int reverse = 0; reverse < 2; reverse++) {
        ts_kd_opts o = {.alpha = 0.5f, .temperature = 2.0f, .reverse = reverse};
        ts_kd_result r, r2;
        memset(d, 0, sizeof d);
        assert_int_equal(ts_kd_loss(&r, d, zs, zt, targets, &o, N, V), TS_OK);
        for (int n = 0; n < N; n++) {
            int nonzero = 0;
            for (int v = 0; v < V; v++) nonzero |= d[n * V + v] != 0.0f;
            if (nonzero != (targets[n] != TS_IGNORE))
                fail_msg("row %d: gradient %s, but the row is %s", n, nonzero ? "non-zero" : "zero",
                         targets[n] == TS_IGNORE ? "masked" : "counted");
        }
        float zs2[N * V], zt2[N * V];
        memcpy(zs2, zs, sizeof zs);
        memcpy(zt2, zt, sizeof zt);
        for (int n = 0; n < N; n++)
            if (targets[n] == TS_IGNORE)
                for (int v = 0; v < V; v++) {
                    zs2[n * V + v] = 100.0f * (float)(v - 3);
                    zt2[n * V + v] = v == 2 ? NAN : -1e30f;
                }
        memset(d2, 0, sizeof d2);
        assert_int_equal(ts_kd_loss(&r2, d2, zs2, zt2, targets, &o, N, V), TS_OK);
        assert_memory_equal(&r2.loss, &r.loss, sizeof r.loss);
        assert_memory_equal(d2, d, sizeof d);
    }
}

/* ---- a whole student under a frozen teacher --------------------------------- */

static ts_config tiny(int vocab, int hidden, int layers) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = vocab;
    c.hidden_size = hidden;
    c.num_hidden_layers = layers;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = hidden / 2;
    c.intermediate_size = 3 * hidden / 2;
    c.max_position_embeddings = 96;
    c.initializer_range = 0.4f;
    return c;
}

enum { MB = 2, MT = 6 };

/* A batch of random tokens whose first two positions and one later are masked, as a prompt and padding are. */
static void model_batch(ts_batch *b, int vocab, uint64_t seed) {
    assert_int_equal(ts_batch_alloc(b, MB, MT, 0), TS_OK);
    ts_rng r;
    ts_rng_seed(&r, seed, TS_STREAM_TEST);
    for (int i = 0; i < MB * MT; i++) {
        b->tokens[i] = (int)ts_rng_below(&r, (uint64_t)vocab);
        b->targets[i] = i % MT < 2 || i == MB * MT - 1 ? TS_IGNORE : (int)ts_rng_below(&r, (uint64_t)vocab);
    }
}

typedef struct {
    ts_model *s, *t;
    const ts_batch *b;
    ts_kd_opts o;
} model_ctx;

static double model_loss(void *p) {
    model_ctx *c = p;
    int n = c->b->B * c->b->T;
    assert_int_equal(ts_model_forward_logits(c->t, c->b->tokens, c->b->B, c->b->T), TS_OK);
    assert_int_equal(ts_model_forward_logits(c->s, c->b->tokens, c->b->B, c->b->T), TS_OK);
    ts_kd_result r;
    assert_int_equal(ts_kd_loss(&r, NULL, c->s->logits, c->t->logits, c->b->targets, &c->o, n, c->s->cfg.vocab_size),
                     TS_OK);
    return r.loss + c->s->aux_loss;
}

/* Every parameter's gradient from ts_distill_step() against finite
 * differences through the student, with a larger frozen teacher, both
 * directions, α = 0.5 and T = 2, at chapter 2's whole-model bound for float32
 * (1e-3 relative to each tensor's largest gradient, h = 4e-3 as chapter 8's
 * GRPO check: the KL's gradients are small, so rounding over h weighs more).
 * tests/f64/test_distill_gradcheck.c repeats this in double at 1e-6. */
static void model_gradient(void **state) {
    (void)state;
    ts_config cs = tiny(13, 8, 2), ct = tiny(13, 12, 3);
    for (int reverse = 0; reverse < 2; reverse++) {
        ts_model s, t;
        assert_int_equal(ts_model_create(&s, &cs, TS_MODEL_GRADS), TS_OK);
        assert_int_equal(ts_model_create(&t, &ct, TS_MODEL_FROZEN), TS_OK);
        ts_model_init_weights(&s, 60 + (uint64_t)reverse);
        ts_model_init_weights(&t, 70 + (uint64_t)reverse);
        ts_batch b;
        model_batch(&b, 13, 80);
        ts_kd_opts o = {.alpha = 0.5f, .temperature = 2.0f, .reverse = reverse};
        ts_model_zero_grad(&s);
        float loss;
        ts_kd_result r;
        assert_int_equal(ts_distill_step(&s, &t, &b, &o, &loss, &r), TS_OK);
        model_ctx c = {&s, &t, &b, o};
        assert_true((float)model_loss(&c) == loss);
        ts_gc_tensor gt[64];
        ts_gc_result res[64];
        int n = s.params.count;
        assert_true(n <= 64);
        for (int i = 0; i < n; i++) {
            ts_param *p = &s.params.params[i];
            gt[i] = (ts_gc_tensor){p->name, s.params.data + p->offset, s.params.grad + p->offset, p->numel};
        }
        double worst = ts_gradcheck(model_loss, &c, gt, n, 4e-3, 0, res, getenv("KD_REPORT") ? stdout : NULL);
        printf("  %s KL through the student: loss %.4f (CE %.4f, KL %.4f), worst relative error %.2e over %d "
               "tensors\n", reverse ? "reverse" : "forward", (double)loss, r.ce, r.kl, worst, n);
        for (int i = 0; i < n; i++)
            if (!(res[i].grad_scale > 0)) fail_msg("%s received no gradient", gt[i].name);
        assert_true(worst <= 1e-3);
        ts_batch_free(&b);
        ts_model_free(&s);
        ts_model_free(&t);
    }
}

/* A frozen teacher with the student's very weights: the same logits, so the
 * KL is exactly 0 and, at α = 0, no parameter gets any gradient. */
static void identical_teacher_model(void **state) {
    (void)state;
    ts_config c = tiny(13, 8, 2);
    ts_model s, t;
    assert_int_equal(ts_model_create(&s, &c, TS_MODEL_GRADS), TS_OK);
    assert_int_equal(ts_model_create(&t, &c, TS_MODEL_FROZEN), TS_OK);
    ts_model_init_weights(&s, 90);
    memcpy(t.params.data, s.params.data, s.params.numel * sizeof(float));
    ts_batch b;
    model_batch(&b, 13, 91);
    for (int reverse = 0; reverse < 2; reverse++) {
        ts_kd_opts o = {.alpha = 0.0f, .temperature = 2.0f, .reverse = reverse};
        ts_model_zero_grad(&s);
        float loss;
        ts_kd_result r;
        assert_int_equal(ts_distill_step(&s, &t, &b, &o, &loss, &r), TS_OK);
        assert_true(r.kl == 0.0 && loss == 0.0f && r.agree == 1.0);
        for (size_t i = 0; i < s.params.numel; i++)
            if (s.params.grad[i] != 0.0f) fail_msg("gradient entry %zu is %g", i, (double)s.params.grad[i]);
    }
    ts_batch_free(&b);
    ts_model_free(&s);
    ts_model_free(&t);
}

/* The teacher is weights and a forward: no gradients, no moments, no backward
 * scratch; its weights do not move; a step cannot train a frozen student. */
static void frozen_teacher_holds_no_gradients(void **state) {
    (void)state;
    ts_config c = tiny(13, 16, 2);
    ts_model t, g;
    assert_int_equal(ts_model_create(&t, &c, TS_MODEL_FROZEN), TS_OK);
    assert_int_equal(ts_model_create(&g, &c, TS_MODEL_TRAIN), TS_OK);
    assert_null(t.params.grad);
    assert_null(t.params.m);
    assert_int_equal(ts_model_reserve(&t, 8, 64), TS_OK);
    assert_int_equal(ts_model_reserve(&g, 8, 64), TS_OK);
    size_t P = t.params.numel * sizeof(float);
    printf("  teacher of %zu parameters, batch 8x64: frozen %zu B of weights + %zu B of activations; trainable "
           "%zu B of weights, gradients, moments + %zu B of activations and scratch\n",
           t.params.numel, P, t.arena.used, 4 * P, g.arena.used);
    assert_true(t.arena.used < g.arena.used);
    ts_model_init_weights(&t, 3);
    float *before = malloc(P);
    memcpy(before, t.params.data, P);
    ts_model s;
    assert_int_equal(ts_model_create(&s, &c, TS_MODEL_GRADS), TS_OK);
    ts_model_init_weights(&s, 4);
    ts_batch b;
    model_batch(&b, 13, 5);
    ts_kd_opts o = ts_kd_opts_default();
    float loss;
    assert_int_equal(ts_distill_step(&s, &t, &b, &o, &loss, NULL), TS_OK);
    assert_memory_equal(before, t.params.data, P);
    assert_int_equal(ts_distill_step(&t, &s, &b, &o, &loss, NULL), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "frozen"));
    free(before);
    ts_batch_free(&b);
    ts_model_free(&s);
    ts_model_free(&t);
    ts_model_free(&g);
}

/* ---- the training loop ------------------------------------------------------ */



static ts_train_opts kd_train_opts(const char *out, long steps) {
    ts_train_opts o = ts_train_opts_default();
    o.batch_size = 4;
    o.steps = steps;
    o.warmup = 2;
    o.lr = 1e-2f;
    o.min_lr = 1e-3f;
    o.eval_every = 10;
    o.out_dir = out;
    o.quiet = 1;
    o.seed = 3;
    return o;
}

/* The mean KL to the teacher over the first 8 pairs (α = 0: the teacher's term alone). */
static double held_kl(ts_model *s, ts_model *t, const ts_sft_data *d, const ts_kd_opts *kd) {
    ts_batch b;
    int T = d->max_len - 1;
    assert_int_equal(ts_batch_alloc(&b, 8, T, 0), TS_OK);
    for (int r = 0; r < 8; r++) ts_sft_fill_row(&d->seq[r], T, d->pad_id, b.tokens + r * T, b.targets + r * T);
    assert_int_equal(ts_model_forward_logits(t, b.tokens, 8, T), TS_OK);
    assert_int_equal(ts_model_forward_logits(s, b.tokens, 8, T), TS_OK);
    ts_kd_opts o = *kd;
    o.alpha = 0;
    ts_kd_result r;
    assert_int_equal(ts_kd_loss(&r, NULL, s->logits, t->logits, b.targets, &o, 8 * T, s->cfg.vocab_size), TS_OK);
    ts_batch_free(&b);
    return r.kl;
}

/* 40 steps of forward-KL distillation at α = 0.2 from a random teacher (a
 * target no data can teach) halve the student's KL to it on held-out pairs;
 * the CSV carries the loss's columns; a run stopped at step 17 and resumed
 * ends on the same weights, bit for bit; resuming under another teacher or
 * temperature is refused. */
static void distill_lowers_kl_and_resumes(void **state) {
    (void)state;
    bpe_tokenizer tok;
    pt_tokenizer(&tok, "");
    ts_config cs = tiny(tok.vocab_size, 16, 2), ct = tiny(tok.vocab_size, 24, 2);
    ts_examples train_set, test_set;
    pt_problems(&train_set, 24, 0);
    pt_problems(&test_set, 8, 5);
    ts_sft_data train, test;
    assert_int_equal(ts_sft_data_build(&train, &tok, TS_TEMPLATE_R1, &train_set, 96, "train"), TS_OK);
    assert_int_equal(ts_sft_data_build(&test, &tok, TS_TEMPLATE_R1, &test_set, 96, "test"), TS_OK);
    ts_model t, a, b;
    assert_int_equal(ts_model_create(&t, &ct, TS_MODEL_FROZEN), TS_OK);
    ts_model_init_weights(&t, 100);
    for (size_t i = 0; i < t.params.numel; i++) t.params.data[i] *= 3.0f; /* a teacher with opinions */
    ts_kd_opts kd = {.alpha = 0.2f, .temperature = 2.0f, .reverse = 0};
    char a_dir[256], b_dir[256], csv[300];
    snprintf(a_dir, sizeof a_dir, "%s/a", tu_dir);
    snprintf(b_dir, sizeof b_dir, "%s/b", tu_dir);
    snprintf(csv, sizeof csv, "%s/metrics.csv", a_dir);

    assert_int_equal(ts_model_create(&a, &cs, TS_MODEL_TRAIN), TS_OK);
    ts_model_init_weights(&a, 9);
    double before = held_kl(&a, &t, &test, &kd);
    ts_train_opts o = kd_train_opts(a_dir, 40);
    o.metrics_path = csv;
    ts_train_result r;
    assert_int_equal(ts_distill(&a, &t, &train, &test, 0, &kd, &o, &r), TS_OK);
    double after = held_kl(&a, &t, &test, &kd);
    printf("  held-out KL to the teacher %.4f -> %.4f in 40 steps; held-out response CE %.4f\n", before, after,
           (double)r.final_val_loss);
    if (!(after < 0.7 * before)) fail_msg("held-out KL %.4f -> %.4f: the student did not learn the teacher", before, after);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ts_read_file(csv, &text, &len), TS_OK);
    assert_non_null(strstr(text, "elapsed_s,ce,kl,agree,response_tokens\n"));
    assert_int_equal(tu_count_lines(text), 41);
    free(text);

    assert_int_equal(ts_model_create(&b, &cs, TS_MODEL_TRAIN), TS_OK);
    ts_model_init_weights(&b, 9);
    ts_train_opts ob = kd_train_opts(b_dir, 40);
    ob.stop_after = 17;
    assert_int_equal(ts_distill(&b, &t, &train, &test, 0, &kd, &ob, &r), TS_OK);
    ob.stop_after = 0;
    ob.resume = 1;
    ts_kd_opts hotter = kd;
    hotter.temperature = 3.0f;
    assert_int_equal(ts_distill(&b, &t, &train, &test, 0, &hotter, &ob, &r), TS_ERR_FORMAT);
    t.params.data[0] += 1.0f; /* another teacher */
    assert_int_equal(ts_distill(&b, &t, &train, &test, 0, &kd, &ob, &r), TS_ERR_FORMAT);
    t.params.data[0] -= 1.0f;
    assert_int_equal(ts_distill(&b, &t, &train, &test, 0, &kd, &ob, &r), TS_OK);
    assert_int_equal(r.steps_run, 23);
    assert_memory_equal(a.params.data, b.params.data, a.params.numel * sizeof(float));

    /* the vocabularies must match */
    ts_config small = tiny(tok.vocab_size + 1, 16, 2);
    ts_model w;
    assert_int_equal(ts_model_create(&w, &small, TS_MODEL_TRAIN), TS_OK);
    assert_int_equal(ts_distill(&w, &t, &train, NULL, 0, &kd, &o, &r), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "vocab_size"));
    ts_model_free(&w);

    ts_model_free(&a);
    ts_model_free(&b);
    ts_model_free(&t);
    ts_sft_data_free(&train);
    ts_sft_data_free(&test);
    ts_examples_free(&train_set);
    ts_examples_free(&test_set);
    bpe_free(&tok);
}

/* ---- tokenizers, bad input ---------------------------------------------------- */

static void tokenizers_must_match(void **state) {
    (void)state;
    bpe_tokenizer a, a2, b;
    pt_tokenizer(&a, "");
    pt_tokenizer(&a2, "");
    pt_tokenizer(&b, "zzzz yyyy zzzz yyyy");
    assert_int_equal(ts_distill_same_tokenizer(&a, "t/tokenizer.json", &a2, "s/tokenizer.json"), TS_OK);
    assert_int_equal(ts_distill_same_tokenizer(&a, "t/tokenizer.json", &b, "s/tokenizer.json"), TS_ERR_FORMAT);
    const char *e = ts_last_error();
    assert_true(strstr(e, "share the tokenizer") && strstr(e, "t/tokenizer.json") && strstr(e, "s/tokenizer.json"));
    a2.merges[a2.n_merges - 1].right = a2.merges[0].left; /* one merge rule differs */
    assert_int_equal(ts_distill_same_tokenizer(&a, "t", &a2, "s"), TS_ERR_FORMAT);
    assert_non_null(strstr(ts_last_error(), "merge"));
    bpe_free(&a);
    bpe_free(&a2);
    bpe_free(&b);
}

static void bad_input_fails_cleanly(void **state) {
    (void)state;
    float zs[N * V], zt[N * V], d[N * V];
    int targets[N];
    rows(zs, zt, targets, 120);
    memset(d, 0, sizeof d);
    ts_kd_result r;
    const ts_kd_opts bad[] = {
        {-0.1f, 2, 0}, {1.5f, 2, 0}, {NAN, 2, 0}, {0.5f, 0, 0}, {0.5f, -1, 0}, {0.5f, INFINITY, 0}, {0.5f, 2, 2},
    };
    const char *want[] = {"alpha", "alpha", "alpha", "temperature", "temperature", "temperature", "reverse"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ts_kd_loss(&r, d, zs, zt, targets, &bad[i], N, V), TS_ERR_ARG);
        assert_non_null(strstr(ts_last_error(), want[i]));
    }
    ts_kd_opts o = ts_kd_opts_default();
    targets[2] = V;
    assert_int_equal(ts_kd_loss(&r, d, zs, zt, targets, &o, N, V), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "outside the vocabulary"));
    targets[2] = 1;
    zt[4 * V + 3] = NAN;
    assert_int_equal(ts_kd_loss(&r, d, zs, zt, targets, &o, N, V), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "teacher's logit 3 at row 4"));
    for (int i = 0; i < N * V; i++) assert_true(d[i] == 0.0f); /* nothing written on failure */
    /* nothing counted: L = 0, no gradient */
    int none[N];
    for (int n = 0; n < N; n++) none[n] = TS_IGNORE;
    assert_int_equal(ts_kd_loss(&r, d, zs, zt, none, &o, N, V), TS_OK);
    assert_true(r.loss == 0 && r.n_counted == 0);
    for (int i = 0; i < N * V; i++) assert_true(d[i] == 0.0f);
    /* the step: vocabularies, weights */
    ts_config c13 = tiny(13, 8, 2), c14 = tiny(14, 8, 2);
    ts_model s, t;
    assert_int_equal(ts_model_create(&s, &c13, TS_MODEL_GRADS), TS_OK);
    assert_int_equal(ts_model_create(&t, &c14, TS_MODEL_FROZEN), TS_OK);
    ts_batch b;
    model_batch(&b, 13, 121);
    float loss;
    assert_int_equal(ts_distill_step(&s, &t, &b, &o, &loss, NULL), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "vocab_size is 14"));
    ts_batch_free(&b);
    assert_int_equal(ts_batch_alloc(&b, MB, MT, 1), TS_OK);
    assert_int_equal(ts_distill_step(&s, &s, &b, &o, &loss, NULL), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "weights"));
    ts_batch_free(&b);
    ts_model_free(&s);
    ts_model_free(&t);
}

/* ---- the command -------------------------------------------------------------- */

/* A teacher checkpoint with its tokenizer, a student config and SFT pairs in
 * tu_dir; `tinyseek distill` trains a fresh student and a checkpointed one,
 * writes the checkpoint and metrics.csv; bad flags, a student whose tokenizer
 * differs and a vocabulary mismatch each end with one line and exit status 2. */
static void distill_command(void **state) {
    (void)state;
    bpe_tokenizer tok, other;
    pt_tokenizer(&tok, "");
    pt_tokenizer(&other, "zzzz yyyy zzzz yyyy");
    assert_int_equal(bpe_save(&tok, tu_path("tok.json")), TS_OK);
    assert_int_equal(bpe_save(&other, tu_path("other.json")), TS_OK);
    ts_config ct = tiny(tok.vocab_size, 24, 2), cs = tiny(tok.vocab_size, 16, 1), cbad = tiny(tok.vocab_size + 3, 16, 1);
    ts_model t;
    assert_int_equal(ts_model_create(&t, &ct, TS_MODEL_FROZEN), TS_OK);
    ts_model_init_weights(&t, 1);
    assert_int_equal(ts_checkpoint_save(&t, tu_path("teacher"), tu_path("tok.json")), TS_OK);
    assert_int_equal(ts_checkpoint_save(&t, tu_path("stranger"), tu_path("other.json")), TS_OK);
    ts_model_free(&t);
    assert_int_equal(ts_config_save(&cs, tu_path("student.json")), TS_OK);
    assert_int_equal(ts_config_save(&cbad, tu_path("bad.json")), TS_OK);
    char pairs[4096];
    size_t n = 0;
    for (int i = 0; i < 12; i++)
        n += (size_t)snprintf(pairs + n, sizeof pairs - n,
                              "{\"prompt\": \"What is %d+%d?\", \"response\": \"<think>%d+%d=%d</think><answer>%d</answer>\"}\n",
                              i % 9, i % 7, i % 9, i % 7, i % 9 + i % 7, i % 9 + i % 7);
    assert_int_equal(ts_write_file_atomic(tu_path("pairs.jsonl"), pairs, n), TS_OK);
    char out[4096];
    const char *base = "distill --teacher %s/teacher --train %s/pairs.jsonl --test %s/pairs.jsonl --steps 4 --batch 4 "
                       "--warmup 1 --threads 1";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, base, tu_dir, tu_dir, tu_dir);
    int rc = tu_run(out, sizeof out, "%s %s --config %s/student.json --out %s/s1 --alpha 0.3 --temperature 1.5", tu_cli(),
                    cmd, tu_dir, tu_dir);
    if (rc != 0) fail_msg("distill --config: exit %d: %s", rc, out);
    if (getenv("KD_REPORT")) printf("%s", out);
    assert_non_null(strstr(out, "frozen"));
    assert_non_null(strstr(out, "no gradients or AdamW moments"));
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ts_read_file(tu_path("s1/metrics.csv"), &text, &len), TS_OK);
    assert_non_null(strstr(text, ",ce,kl,agree,response_tokens\n"));
    assert_int_equal(tu_count_lines(text), 5);
    free(text);
    assert_true(access(tu_path("s1/model.safetensors"), F_OK) == 0 && access(tu_path("s1/tokenizer.json"), F_OK) == 0);
    /* the student from its checkpoint, reverse KL */
    rc = tu_run(out, sizeof out, "%s %s --init %s/s1 --out %s/s2 --reverse-kl --quiet", tu_cli(), cmd, tu_dir, tu_dir);
    if (rc != 0) fail_msg("distill --init: exit %d: %s", rc, out);
    assert_non_null(strstr(out, "distill: 4 steps"));

    static const struct {
        const char *flags, *want;
    } bad[] = {
        {"--config %s/student.json --out %s/x --alpha 1.5", "--alpha must be between 0 and 1"},
        {"--config %s/student.json --out %s/x --temperature 0", "--temperature must be between"},
        {"--config %s/student.json --out %s/x --reverse-kl=1", "--reverse-kl takes no value"},
        {"--config %s/student.json --init %s/s1 --out x", "not both"},
        {"--out %s/x", "--init DIR or --config F"},
        {"--init %s/stranger --out %s/x", "share the tokenizer"},
        {"--config %s/bad.json --out %s/x", "vocab_size"},
        {"--config %s/student.json --out %s/x --kl forward", "unknown flag '--kl'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char flags[512];
        snprintf(flags, sizeof flags, bad[i].flags, tu_dir, tu_dir);
        rc = tu_run(out, sizeof out, "%s %s %s --quiet", tu_cli(), cmd, flags);
        if (rc != 2 || tu_count_lines(out) != 1 || !strstr(out, bad[i].want))
            fail_msg("'%s': exit %d, %d lines: %s (expected exit 2, one line with '%s')", flags, rc,
                     tu_count_lines(out), out, bad[i].want);
    }
    rc = tu_run(out, sizeof out, "%s distill --train x.jsonl --init y --out z", tu_cli());
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--teacher DIR is required"));
    bpe_free(&tok);
    bpe_free(&other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loss_matches_definition),
        cmocka_unit_test(gradient_from_logits),
        cmocka_unit_test(alpha_one_is_masked_cross_entropy),
        cmocka_unit_test(teacher_equal_to_student),
        cmocka_unit_test(masked_rows_are_inert),
        cmocka_unit_test(model_gradient),
        cmocka_unit_test(identical_teacher_model),
        cmocka_unit_test(frozen_teacher_holds_no_gradients),
        cmocka_unit_test_setup_teardown(distill_lowers_kl_and_resumes, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test(tokenizers_must_match),
        cmocka_unit_test(bad_input_fails_cleanly),
        cmocka_unit_test_setup_teardown(distill_command, tu_setup_dir, tu_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Chapter 8: GRPO training (src/train/grpo_train.c, reward.c, model/sampling.c,
 * cli/cmd_grpo.c): the rule-reward table for both templates; rollouts (layout,
 * rewards of the decoded text, determinism, independence of the batch
 * around a sequence); equal rewards leave every weight bit-identical after
 * whole training steps; μ = 1, β = 0 is one step of REINFORCE with a group-mean
 * baseline built by hand from a weighted cross-entropy; the command line
 * (bad flags, and a run that resumes bit for bit); PPO's value loss against
 * finite differences, and its per-token advantages against GRPO's; one
 * online-RFT step against an SFT step on the kept samples. The GRPO loss itself is
 * tested in test_ch08_grpo.c, and its gradient with β > 0 after a real update
 * (μ > 1) in double precision in tests/f64/test_grpo_gradcheck.c. */
#include "posttrain_fixtures.h"

#include "core/gradcheck.h"
#include "core/optim.h"
#include "data/bpe.h"
#include "io/fileio.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "train/grpo_train.h"
#include "train/loss.h"
#include "train/reward.h"

/* ---- the rule rewards ------------------------------------------------------ */

typedef struct {
    ts_template t;
    const char *generated; /* what the model wrote after the template's generation prompt */
    float reward;          /* with accuracy 1, format 0.1 */
    int correct, format_ok;
} reward_case;

/* The same responses under both templates: r1's prompt already ends in "<think>\n",
 * so its model writes from inside the think block; r1-zero's writes everything. */
static const reward_case reward_cases[] = {
    /* right, clean */
    {TS_TEMPLATE_R1_ZERO, " <think>3+4=7</think> <answer>7</answer>", 1.1f, 1, 1},
    {TS_TEMPLATE_R1, "3+4=7</think>\n<answer>7</answer>", 1.1f, 1, 1},
    /* wrong, clean: the format reward only */
    {TS_TEMPLATE_R1_ZERO, "<think>3+4=8</think><answer>8</answer>", 0.1f, 0, 1},
    {TS_TEMPLATE_R1, "3+4=8</think><answer>8</answer>", 0.1f, 0, 1},
    /* clean but the answer is not a number: the format reward is not paid with it */
    {TS_TEMPLATE_R1_ZERO, "<think>hmm</think><answer>seven</answer>", 0.0f, 0, 0},
    {TS_TEMPLATE_R1, "hmm</think><answer>x</answer>", 0.0f, 0, 0},
    /* malformed: no think block, no answer block, an unclosed answer */
    {TS_TEMPLATE_R1_ZERO, "<answer>7</answer>", 0.0f, 0, 0},
    {TS_TEMPLATE_R1_ZERO, "<think>3+4=7</think> 7", 0.0f, 0, 0},
    {TS_TEMPLATE_R1, "3+4=7</think><answer>7", 0.0f, 0, 0},
    {TS_TEMPLATE_R1, "3+4=7 <answer>7</answer>", 0.0f, 0, 0},
    /* repeated tags earn nothing, even with the right answer first */
    {TS_TEMPLATE_R1_ZERO, "<think>a</think><answer>7</answer><answer>8</answer>", 0.0f, 0, 0},
    {TS_TEMPLATE_R1_ZERO, "<think>a</think><think>b</think><answer>7</answer>", 0.0f, 0, 0},
    {TS_TEMPLATE_R1, "<think>3+4=7</think><answer>7</answer>", 0.0f, 0, 0}, /* a second <think> after the prompt's */
    /* out of order */
    {TS_TEMPLATE_R1_ZERO, "<answer>7</answer><think>3+4=7</think>", 0.0f, 0, 0},
    /* empty answer */
    {TS_TEMPLATE_R1_ZERO, "<think>3+4=7</think><answer> </answer>", 0.0f, 0, 0},
    {TS_TEMPLATE_R1, "3+4=7</think><answer></answer>", 0.0f, 0, 0},
    /* text outside the tags: the right answer still counts, the format does not */
    {TS_TEMPLATE_R1_ZERO, "Sure! <think>3+4=7</think><answer>7</answer>", 1.0f, 1, 0},
    {TS_TEMPLATE_R1_ZERO, "<think>3+4=7</think> so <answer>7</answer>", 1.0f, 1, 0},
    {TS_TEMPLATE_R1, "3+4=7</think><answer>7</answer> done", 1.0f, 1, 0},
    {TS_TEMPLATE_R1, "3+4=7</think><answer>8</answer> done", 0.0f, 0, 0},
    /* the bare-question template: the pretraining text's tagged line, or its plain answer */
    {TS_TEMPLATE_QUESTION, " <think>3+4=7 carry 0</think><answer>7</answer>", 1.1f, 1, 1},
    {TS_TEMPLATE_QUESTION, " 7", 0.0f, 0, 0},
    {TS_TEMPLATE_QUESTION, " <think>3+4=7</think><answer>7</answer><answer>7</answer>", 0.0f, 0, 0},
    /* nothing at all */
    {TS_TEMPLATE_R1_ZERO, "", 0.0f, 0, 0},
    {TS_TEMPLATE_R1, "", 0.0f, 0, 0},
};

static void reward_table(void **state) {
    (void)state;
    ts_reward_opts o = ts_reward_opts_default();
    assert_true(o.accuracy_weight == 1.0f && o.format_weight == 0.1f);
    for (size_t i = 0; i < sizeof reward_cases / sizeof reward_cases[0]; i++) {
        const reward_case *c = &reward_cases[i];
        ts_reward r = ts_reward_of(c->t, c->generated, "7", &o);
        if (r.reward != c->reward || r.correct != c->correct || r.format_ok != c->format_ok)
            fail_msg("case %zu (%s) '%s': reward %g correct %d format %d (%s), expected %g %d %d", i,
                     ts_template_name(c->t), c->generated, (double)r.reward, r.correct, r.format_ok,
                     ts_format_name(r.format), (double)c->reward, c->correct, c->format_ok);
    }
    /* the weights: a clean right answer pays both */
    o.accuracy_weight = 2.0f;
    o.format_weight = 0.5f;
    assert_true(ts_reward_of(TS_TEMPLATE_R1, "x</think><answer>7</answer>", "7", &o).reward == 2.5f);
    assert_true(ts_reward_of(TS_TEMPLATE_R1, "x</think><answer>6</answer>", "7", &o).reward == 0.5f);
    assert_true(ts_answer_is_integer(" 42 ") && ts_answer_is_integer("-3") && !ts_answer_is_integer("4 2") &&
                !ts_answer_is_integer("-") && !ts_answer_is_integer("") && !ts_answer_is_integer("4.5"));
}

/* ---- a tokenizer, a tiny model, problems ------------------------------------ */




/* A reward with spread in every group of a random model's completions: the
 * generated text's byte sum modulo 3 (the rule rewards of a random model are all 0). */
static float byte_reward(void *ctx, const char *generated, const ts_example *e) {
    (void)ctx;
    (void)e;
    unsigned s = 0;
    for (const unsigned char *p = (const unsigned char *)generated; *p; p++) s += *p;
    return (float)(s % 3);
}

/* Equal rewards within a group, different between groups (the problem's answer
 * times a constant): a baseline taken over the batch rather than the group would show. */
static float per_problem_reward(void *ctx, const char *generated, const ts_example *e) {
    (void)generated;
    return *(const float *)ctx * (float)atoi(e->answer);
}

typedef struct {
    bpe_tokenizer tok;
    ts_config cfg;
    ts_examples set;
    ts_rl_prompts prompts;
} world;

static void world_open(world *w, ts_template t) {
    pt_tokenizer(&w->tok, NULL);
    w->cfg = pt_tiny_mla(w->tok.vocab_size, 512); /* the R1-Zero prompt is ~400 tokens with this tokenizer */
    pt_problems(&w->set, 12, 0);
    assert_int_equal(ts_rl_prompts_build(&w->prompts, &w->tok, t, &w->set), TS_OK);
}

static void world_close(world *w) {
    ts_rl_prompts_free(&w->prompts);
    ts_examples_free(&w->set);
    bpe_free(&w->tok);
}

static ts_grpo_train_opts small_opts(void) {
    ts_grpo_train_opts o = ts_grpo_train_opts_default();
    o.P = 3;
    o.G = 4;
    o.max_new = 12;
    o.sample_seed = 7;
    return o;
}

/* ---- rollouts ---------------------------------------------------------------- */

static void rollout_of(ts_rollout *r, ts_model *m, world *w, const ts_grpo_train_opts *o, uint64_t order_seed,
                       long index, int *problem) {
    ts_rollout_sampler s;
    assert_int_equal(ts_rollout_sampler_create(&s, m, &w->tok, &w->prompts, o), TS_OK);
    ts_rng order;
    ts_rng_seed(&order, order_seed, TS_STREAM_DATA);
    memset(r, 0, sizeof *r);
    assert_int_equal(ts_grpo_rollout(&s, &order, index, r), TS_OK);
    if (problem) memcpy(problem, s.info.problem, (size_t)o->P * sizeof(int));
    ts_rollout_sampler_free(&s);
}

static int same_rollout(const ts_rollout *a, const ts_rollout *b) {
    size_t n = (size_t)a->P * a->G, nt = n * a->T;
    return a->P == b->P && a->G == b->G && a->T == b->T && !memcmp(a->tokens, b->tokens, nt * sizeof(int)) &&
           !memcmp(a->targets, b->targets, nt * sizeof(int)) && !memcmp(a->rewards, b->rewards, n * sizeof(float)) &&
           !memcmp(a->completion_len, b->completion_len, n * sizeof(int));
}

/* Every sequence is its problem's prompt, then a completion that ends in <|eos|>
 * or </answer> or fills max_new, then padding; targets mark the completion; the
 * reward is the rule reward of the decoded completion. The same seeds give the
 * same bits; another sampling seed other completions; a group's completions do
 * not depend on the groups decoded beside it (P = 1 and P = 3 agree on group 0). */
static void rollouts(void **state) {
    (void)state;
    const ts_template tmpls[2] = {TS_TEMPLATE_R1, TS_TEMPLATE_R1_ZERO};
    for (int ti = 0; ti < 2; ti++) {
        world w;
        world_open(&w, tmpls[ti]);
        ts_grpo_train_opts o = small_opts();
        o.tmpl = tmpls[ti];
        ts_model m;
        assert_int_equal(ts_model_create(&m, &w.cfg, TS_MODEL_FROZEN), TS_OK);
        ts_model_init_weights(&m, 3);
        ts_rollout a, b, c, one;
        int problem[3], problem1[1];
        rollout_of(&a, &m, &w, &o, 11, 0, problem);
        assert_true(problem[0] != problem[1] && problem[0] != problem[2] && problem[1] != problem[2]);
        int eos = bpe_special_id(&w.tok, BPE_EOS), end = bpe_special_id(&w.tok, BPE_ANSWER_END);
        int pad = bpe_special_id(&w.tok, BPE_PAD), ended = 0;
        for (int i = 0; i < o.P * o.G; i++) {
            int g = i / o.G, p = a.prompt_len[i], n = a.completion_len[i];
            const int *tok = a.tokens + (size_t)i * a.T, *tgt = a.targets + (size_t)i * a.T;
            assert_int_equal(p, w.prompts.len[problem[g]]);
            assert_memory_equal(tok, w.prompts.ids[problem[g]], (size_t)p * sizeof(int));
            assert_true(n >= 1 && n <= o.max_new && p + n <= a.T);
            int last = tok[p + n - 1];
            assert_true(last == eos || last == end || n == o.max_new);
            ended += last == eos || last == end;
            for (int k = 0; k < n - 1; k++) assert_true(tok[p + k] != eos && tok[p + k] != end); /* stops at the first */
            for (int t = 0; t < a.T; t++) {
                assert_int_equal(tgt[t], t >= p - 1 && t < p + n - 1 ? tok[t + 1] : TS_IGNORE);
                if (t >= p + n) assert_int_equal(tok[t], pad);
            }
            char *text = NULL;
            size_t len = 0;
            assert_int_equal(bpe_decode(&w.tok, tok + p, (size_t)(last == eos ? n - 1 : n), &text, &len), TS_OK);
            ts_reward rw = ts_reward_of(o.tmpl, text, w.set.ex[problem[g]].answer, &o.reward);
            assert_true(a.rewards[i] == rw.reward);
            free(text);
        }
        assert_true(ended >= 1); /* a random tiny model still stops sometimes: both branches are exercised */
        assert_true(a.ref_logp != NULL && a.has_old == 0); /* β > 0 by default: room for π_ref */
        rollout_of(&b, &m, &w, &o, 11, 0, NULL);
        assert_true(same_rollout(&a, &b));
        ts_grpo_train_opts o2 = o;
        o2.sample_seed = 8;
        rollout_of(&c, &m, &w, &o2, 11, 0, NULL);
        assert_false(same_rollout(&a, &c));
        ts_rollout_free(&c);
        rollout_of(&c, &m, &w, &o, 11, 1, NULL); /* the next rollout of the same run: other samples */
        assert_false(same_rollout(&a, &c));
        ts_grpo_train_opts o1 = o;
        o1.P = 1;
        rollout_of(&one, &m, &w, &o1, 11, 0, problem1);
        assert_int_equal(problem1[0], problem[0]);
        for (int j = 0; j < o.G; j++) {
            assert_int_equal(one.completion_len[j], a.completion_len[j]);
            int p = a.prompt_len[j], n = a.completion_len[j];
            assert_memory_equal(one.tokens + (size_t)j * one.T, a.tokens + (size_t)j * a.T, (size_t)(p + n) * sizeof(int));
        }
        ts_rollout_free(&a);
        ts_rollout_free(&b);
        ts_rollout_free(&c);
        ts_rollout_free(&one);
        ts_model_free(&m);
        world_close(&w);
    }
}

/* ---- whole training steps ---------------------------------------------------- */

static ts_train_opts loop_opts(long steps) {
    ts_train_opts lo = ts_train_opts_default();
    lo.steps = steps;
    lo.warmup = 0;
    lo.lr = 1e-2f;
    lo.min_lr = 1e-2f;
    lo.eval_every = 0;
    lo.quiet = 1;
    lo.seed = 5;
    return lo;
}

/* Every group's rewards equal (the groups' differ): the advantages are exactly
 * 0, so every gradient is exactly 0, AdamW's moments stay 0, and without
 * weight decay the weights after two rollout batches of μ = 2 steps each are
 * the starting weights, bit for bit: for each normalisation with β = 0, and
 * with a reference held (β > 0) when the zero-variance groups leave the batch
 * (then no KL term is left either; with them kept, the KL's gradient at
 * π_ref = π_θ is 0 only up to the rounding of the reference's group-sized
 * forward, ts_grpo_token_logp()). The same run with rewards that differ moves
 * them (the check can fail). */
static void equal_rewards_leave_weights_bit_identical(void **state) {
    (void)state;
    world w;
    world_open(&w, TS_TEMPLATE_R1);
    float half = 0.5f;
    const ts_grpo_norm norms[3] = {TS_GRPO_NORM_SEQUENCE, TS_GRPO_NORM_TOKEN, TS_GRPO_NORM_CONSTANT};
    for (int variant = 0; variant < 4; variant++) {
        ts_grpo_train_opts o = small_opts();
        o.mu = 2;
        o.grpo.norm = norms[variant % 3];
        o.grpo.max_len = o.max_new;
        o.grpo.beta = variant == 1 || variant == 3 ? 0.2f : 0.0f;
        o.grpo.drop_zero_var = variant == 1;
        o.reward_fn = variant == 3 ? byte_reward : per_problem_reward;
        o.reward_ctx = &half;
        ts_train_opts lo = loop_opts(4);
        lo.adamw.weight_decay = 0.0f;
        ts_model m, ref;
        assert_int_equal(ts_model_create(&m, &w.cfg, TS_MODEL_TRAIN), TS_OK);
        ts_model_init_weights(&m, 21);
        assert_int_equal(ts_model_create(&ref, &w.cfg, TS_MODEL_FROZEN), TS_OK);
        memcpy(ref.params.data, m.params.data, m.params.numel * sizeof(float));
        size_t bytes = m.params.numel * sizeof(float);
        float *before = malloc(bytes);
        memcpy(before, m.params.data, bytes);
        ts_train_result res;
        assert_int_equal(ts_grpo_train(&m, o.grpo.beta > 0 ? &ref : NULL, &w.tok, &w.prompts, NULL, &o, &lo, &res),
                         TS_OK);
        assert_int_equal(res.steps_run, 4);
        if (variant < 3) {
            assert_memory_equal(before, m.params.data, bytes);
            assert_true(res.final_loss == 0.0f);
        } else {
            assert_true(memcmp(before, m.params.data, bytes) != 0);
        }
        free(before);
        ts_model_free(&ref);
        ts_model_free(&m);
    }
    world_close(&w);
}

/* μ = 1, β = 0: one training step of the whole pipeline (sample, reward, GRPO
 * loss, the loop's AdamW) equals, bit for bit, REINFORCE built by hand on the
 * same rollout: A_i = (r_i − mean of its group)/(population std + ε), the
 * per-completion normalisation D_i = P·G·|o_i|, and the gradient of
 * Σ_i (A_i/D_i)·(−Σ_t log π(o_it)) from ts_loss_crossentropy() with those
 * weights, then the same AdamW step. */
static void mu1_beta0_step_is_reinforce(void **state) {
    (void)state;
    world w;
    world_open(&w, TS_TEMPLATE_R1);
    ts_grpo_train_opts o = small_opts();
    o.grpo.beta = 0.0f;
    o.reward_fn = byte_reward;
    ts_train_opts lo = loop_opts(1);
    lo.grad_clip = 0.0f;
    ts_model a, b;
    assert_int_equal(ts_model_create(&a, &w.cfg, TS_MODEL_TRAIN), TS_OK);
    assert_int_equal(ts_model_create(&b, &w.cfg, TS_MODEL_TRAIN), TS_OK);
    ts_model_init_weights(&a, 31);
    ts_model_init_weights(&b, 31);
    ts_train_result res;
    assert_int_equal(ts_grpo_train(&a, NULL, &w.tok, &w.prompts, NULL, &o, &lo, &res), TS_OK);

    /* by hand, on b */
    ts_rollout r;
    rollout_of(&r, &b, &w, &o, lo.seed, 0, NULL);
    int n = o.P * o.G, N = n * r.T, V = w.cfg.vocab_size, spread = 0;
    double A[12];
    assert_true(n <= 12);
    for (int g = 0; g < o.P; g++) {
        double mean = 0, var = 0;
        for (int j = 0; j < o.G; j++) mean += r.rewards[g * o.G + j];
        mean /= o.G;
        for (int j = 0; j < o.G; j++) var += (r.rewards[g * o.G + j] - mean) * (r.rewards[g * o.G + j] - mean);
        spread += var > 0;
        for (int j = 0; j < o.G; j++) A[g * o.G + j] = (r.rewards[g * o.G + j] - mean) / (sqrt(var / o.G) + 1e-4);
    }
    assert_true(spread >= 2); /* most groups carry a signal */
    float *wt = calloc((size_t)N, sizeof(float));
    for (int i = 0; i < n; i++)
        for (int t = 0; t < r.T; t++)
            if (r.targets[(size_t)i * r.T + t] != TS_IGNORE)
                wt[(size_t)i * r.T + t] = (float)(A[i] / ((double)n * r.completion_len[i]));
    ts_model_zero_grad(&b);
    assert_int_equal(ts_model_forward_logits(&b, r.tokens, n, r.T), TS_OK);
    memset(b.d_logits, 0, (size_t)N * V * sizeof(float));
    ts_ce_result ce;
    assert_int_equal(ts_loss_crossentropy(&ce, b.d_logits, NULL, b.logits, r.targets, wt, 1.0, N, V), TS_OK);
    assert_int_equal(ts_model_backward_from(&b, b.d_logits, NULL, 0.0f), TS_OK);
    adamw_step(&b.params, &lo.adamw, lr_schedule(0, lo.warmup, lo.steps, lo.lr, lo.min_lr), 1);
    size_t bytes = a.params.numel * sizeof(float);
    assert_memory_equal(a.params.data, b.params.data, bytes);
    printf("  one GRPO step (mu = 1, beta = 0) = one REINFORCE step with a group baseline: the same bits\n");
    free(wt);
    ts_rollout_free(&r);
    ts_model_free(&a);
    ts_model_free(&b);
    world_close(&w);
}

/* ---- PPO's pieces ---------------------------------------------------------------- */

typedef struct {
    float *values, *hidden, *head;
    const ts_rollout *r;
    int C;
} value_ctx;

static double value_loss_of(void *p) {
    value_ctx *c = p;
    return ts_value_loss(c->values, NULL, NULL, c->hidden, c->head, c->C, c->r, 0.7f);
}

/* The value loss (coef/2n)·Σ_t (w·h_t + b − r_i)² over completion tokens: its
 * gradients in the head (w, b) and in the hidden states against finite
 * differences (it is quadratic: central differences are exact up to
 * rounding), zero gradient at positions outside the completions, and V_t = w·h_t + b. */
static void value_loss_gradient(void **state) {
    (void)state;
    enum { C = 5, TT = 6 };
    ts_rollout r;
    assert_int_equal(ts_rollout_alloc(&r, 1, 3, TT, 0), TS_OK);
    const int prompt[2] = {1, 2}, c1[3] = {3, 4, 5}, c2[1] = {6}, c3[4] = {7, 8, 9, 1};
    assert_int_equal(ts_rollout_set(&r, 0, prompt, 2, c1, 3, 1.0f, 0), TS_OK);
    assert_int_equal(ts_rollout_set(&r, 1, prompt, 2, c2, 1, 0.0f, 0), TS_OK);
    assert_int_equal(ts_rollout_set(&r, 2, prompt, 2, c3, 4, 0.5f, 0), TS_OK);
    int N = 3 * TT;
    float hidden[3 * TT * C], head[C + 1], values[3 * TT], d_hidden[3 * TT * C] = {0}, grad[C + 1] = {0};
    tu_fill(hidden, (size_t)N * C, 1.0f, 81);
    tu_fill(head, C + 1, 0.5f, 82);
    double loss = ts_value_loss(values, d_hidden, grad, hidden, head, C, &r, 0.7f);
    assert_true(loss > 0);
    for (int k = 0; k < N; k++) {
        double v = head[C];
        for (int c = 0; c < C; c++) v += (double)head[c] * hidden[k * C + c];
        assert_true(fabs(values[k] - v) <= 1e-6);
        if (r.targets[k] == TS_IGNORE)
            for (int c = 0; c < C; c++) assert_true(d_hidden[k * C + c] == 0.0f);
    }
    value_ctx ctx = {values, hidden, head, &r, C};
    ts_gc_tensor t[2] = {{"head", head, grad, C + 1}, {"hidden", hidden, d_hidden, (size_t)N * C}};
    ts_gc_result res[2];
    double worst = ts_gradcheck(value_loss_of, &ctx, t, 2, 1e-2, 0, res, NULL);
    printf("  value loss: worst relative error %.1e\n", worst);
    assert_true(worst <= 1e-4);
    ts_rollout_free(&r);
}

/* PPO's objective with every token of completion i given the group advantage
 * A_i is GRPO's, token for token: the same loss and d_logits, bit for bit
 * (token-level normalisation, the clip and the KL on); a different per-token
 * advantage changes them. */
static void per_token_advantages_generalise_grpo(void **state) {
    (void)state;
    enum { V = 7, P = 2, G = 4, TT = 6, N = P * G * TT };
    ts_rollout r;
    assert_int_equal(ts_rollout_alloc(&r, P, G, TT, 1), TS_OK);
    ts_rng g;
    ts_rng_seed(&g, 90, TS_STREAM_TEST);
    for (int i = 0; i < P * G; i++) {
        int prompt[2] = {1, 2}, comp[4];
        int c = 1 + (int)ts_rng_below(&g, 4);
        for (int k = 0; k < c; k++) comp[k] = (int)ts_rng_below(&g, V);
        assert_int_equal(ts_rollout_set(&r, i, prompt, 2, comp, c, (float)(i % 3), 0), TS_OK);
    }
    float logits[N * V];
    tu_fill(logits, (size_t)N * V, 2.0f, 91);
    for (int k = 0; k < N; k++) {
        r.old_logp[k] = r.targets[k] == TS_IGNORE ? 0 : -2.0 + 0.3 * (k % 5);
        r.ref_logp[k] = r.targets[k] == TS_IGNORE ? 0 : -1.5 - 0.2 * (k % 3);
    }
    r.has_old = 1;
    ts_grpo_opts o = ts_grpo_opts_default();
    o.norm = TS_GRPO_NORM_TOKEN;
    o.beta = 0.1f;
    float d_group[N * V] = {0}, d_token[N * V] = {0};
    ts_grpo_stats s1, s2;
    assert_int_equal(ts_grpo_loss(&s1, d_group, NULL, logits, &r, &o, V), TS_OK);
    double adv[P * G];
    ts_grpo_advantages(adv, NULL, r.rewards, P, G, o.scale_by_std, o.adv_eps);
    r.token_adv = malloc(N * sizeof(double));
    for (int k = 0; k < N; k++) r.token_adv[k] = r.targets[k] == TS_IGNORE ? 0 : adv[k / TT];
    assert_int_equal(ts_grpo_loss(&s2, d_token, NULL, logits, &r, &o, V), TS_OK);
    assert_true(s1.loss == s2.loss && s1.clip_frac == s2.clip_frac && s1.clip_frac > 0);
    assert_memory_equal(d_group, d_token, sizeof d_group);
    r.token_adv[TT + 1] += 0.5; /* one token's advantage */
    memset(d_token, 0, sizeof d_token);
    assert_int_equal(ts_grpo_loss(&s2, d_token, NULL, logits, &r, &o, V), TS_OK);
    assert_true(memcmp(d_group, d_token, sizeof d_group) != 0 && s1.loss != s2.loss);
    ts_rollout_free(&r); /* frees token_adv too */
}

/* ---- the command line ----------------------------------------------------------- */

/* Each bad flag: exit status 2 and one line that names it, before any file is read. */
static void cli_rejects_bad_flags(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"--group 0", "--group"},
        {"--prompts -1", "--prompts"},
        {"--mu 0", "--mu"},
        {"--beta -0.1", "--beta"},
        {"--clip-low 1.5", "--clip-low"},
        {"--norm mean", "--norm"},
        {"--algo ppo2", "--algo"},
        {"--algo ppo --resume", "--resume"},
        {"--template r2", "r2"},
        {"--temperature 0", "--temperature"},
        {"--max-new x", "--max-new"},
        {"--steps 10 --warmup 10", "--warmup"},
        {"--mu 2 --save-every 3", "--mu"},
        {"--mu 2 --stop-after 5", "--mu"},
        {"--frobnicate 1", "--frobnicate"},
    };
    char out[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = tu_run(out, sizeof out, "%s grpo --init /nonexistent --data /nonexistent --out /tmp/x %s", tu_cli(),
                        cases[i][0]);
        if (rc != 2 || tu_count_lines(out) != 1 || !strstr(out, cases[i][1]))
            fail_msg("'%s': exit %d, output '%s'", cases[i][0], rc, out);
    }
    static const char *const missing[][2] = {
        {"--data /nonexistent --out /tmp/x", "--init"},
        {"--init /nonexistent --data /nonexistent", "--out"},
        {"--init /nonexistent --out /tmp/x", "--data"},
        {"--init /nonexistent --data /nonexistent --out /tmp/x", "/nonexistent"},
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        int rc = tu_run(out, sizeof out, "%s grpo %s", tu_cli(), missing[i][0]);
        if (rc != 2 || tu_count_lines(out) != 1 || !strstr(out, missing[i][1]))
            fail_msg("'%s': exit %d, output '%s'", missing[i][0], rc, out);
    }
    assert_int_equal(tu_run(NULL, 0, "%s grpo --help", tu_cli()), 0);
}

/* A checkpoint folder (a random model fine-tuned briefly on worked answers, so
 * that its completions earn different rewards), a prompts file and SFT pairs in tu_dir. */
static void cli_world(void) {
    world w;
    world_open(&w, TS_TEMPLATE_R1);
    assert_int_equal(bpe_save(&w.tok, tu_path("tokenizer.json")), TS_OK);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &w.cfg, TS_MODEL_FROZEN), TS_OK);
    ts_model_init_weights(&m, 41);
    assert_int_equal(ts_mkdir_p(tu_path("init")), TS_OK);
    assert_int_equal(ts_checkpoint_write(&m, tu_path("init"), tu_path("tokenizer.json")), TS_OK);
    ts_model_free(&m);
    char lines[4096], pairs[8192];
    size_t n = 0, np = 0;
    for (int i = 0; i < w.set.n; i++) {
        const char *q = w.set.ex[i].prompt, *a = w.set.ex[i].answer;
        n += (size_t)snprintf(lines + n, sizeof lines - n, "{\"prompt\":\"%s\",\"answer\":\"%s\"}\n", q, a);
        np += (size_t)snprintf(pairs + np, sizeof pairs - np,
                               "{\"prompt\":\"%s\",\"response\":\"<think>%.5s</think><answer>%s</answer>\"}\n", q,
                               q + 8, a);
    }
    assert_int_equal(ts_write_file_atomic(tu_path("prompts.jsonl"), lines, n), TS_OK);
    assert_int_equal(ts_write_file_atomic(tu_path("pairs.jsonl"), pairs, np), TS_OK);
    world_close(&w);
    char out[4096];
    int rc = tu_run(out, sizeof out, "%s sft --init %s/init --train %s/pairs.jsonl --out %s/sft --steps 60 --batch 8 "
                    "--lr 0.01 --warmup 2 --threads 1 --quiet", tu_cli(), tu_dir, tu_dir, tu_dir);
    if (rc != 0) fail_msg("sft: exit %d: %s", rc, out);
}

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = !ts_read_file(a, &x, &nx) && !ts_read_file(b, &y, &ny) && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* `tinyseek grpo` end to end: 4 steps of μ = 2 with a reference, and the same
 * run stopped after 2 steps and resumed, give the same checkpoint to the byte
 * (and it moved: the rewards differed); the metrics have a row per step and
 * the evaluations one row per evaluation; --algo rft runs too. */
static void cli_runs_and_resumes(void **state) {
    (void)state;
    cli_world();
    char out[8192];
    const char *common = "grpo --train %s/prompts.jsonl --test %s/prompts.jsonl --eval-problems 3 --init %s/sft "
                         "--group 4 --prompts 3 --mu 2 --beta 0.1 --max-new 12 --steps 4 --eval-every 2 --lr 0.01 "
                         "--min-lr 0.01 --threads 1 --quiet";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, common, tu_dir, tu_dir, tu_dir);
    int rc = tu_run(out, sizeof out, "%s %s --out %s/a", tu_cli(), cmd, tu_dir);
    if (rc != 0) fail_msg("grpo: exit %d: %s", rc, out);
    assert_false(same_file(tu_path("sft/model.safetensors"), tu_path("a/model.safetensors")));
    rc = tu_run(out, sizeof out, "%s %s --out %s/b --stop-after 2", tu_cli(), cmd, tu_dir);
    if (rc != 0) fail_msg("grpo --stop-after 2: exit %d: %s", rc, out);
    assert_false(same_file(tu_path("a/model.safetensors"), tu_path("b/model.safetensors")));
    rc = tu_run(out, sizeof out, "%s %s --out %s/b --resume", tu_cli(), cmd, tu_dir);
    if (rc != 0) fail_msg("grpo --resume: exit %d: %s", rc, out);
    assert_true(same_file(tu_path("a/model.safetensors"), tu_path("b/model.safetensors")));
    char *csv = NULL;
    size_t n = 0;
    assert_int_equal(ts_read_file(tu_path("a/metrics.csv"), &csv, &n), TS_OK);
    assert_int_equal(tu_count_lines(csv), 5);
    assert_non_null(strstr(csv, "reward,accuracy,format_rate,kl,clip_frac,zero_var_frac,completion_len,entropy,rollout_s"));
    free(csv);
    assert_int_equal(ts_read_file(tu_path("b/metrics.csv"), &csv, &n), TS_OK);
    assert_int_equal(tu_count_lines(csv), 5);
    free(csv);
    assert_int_equal(ts_read_file(tu_path("a/eval.csv"), &csv, &n), TS_OK);
    assert_true(!strncmp(csv, "step,greedy_pass1,greedy_format,mean_len\n0,", 43));
    assert_int_equal(tu_count_lines(csv), 5); /* steps 0, 1, 2, 4 */
    free(csv);
    rc = tu_run(out, sizeof out, "%s %s --out %s/c --algo rft", tu_cli(), cmd, tu_dir);
    if (rc != 0) fail_msg("grpo --algo rft: exit %d: %s", rc, out);
    rc = tu_run(out, sizeof out, "%s %s --out %s/d --algo ppo", tu_cli(), cmd, tu_dir);
    if (rc != 0) fail_msg("grpo --algo ppo: exit %d: %s", rc, out);
    assert_int_equal(ts_read_file(tu_path("d/metrics.csv"), &csv, &n), TS_OK);
    assert_int_equal(tu_count_lines(csv), 5);
    assert_null(strstr(csv, "nan\n")); /* the value loss, the last column, is there */
    free(csv);
    rc = tu_run(out, sizeof out, "%s %s --out %s/d --algo ppo --resume", tu_cli(), cmd, tu_dir);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "value head"));
}

/* --algo rft: one step is one SFT step on the step's right, clean completions
 * (mean cross-entropy over their tokens, through loss.c), and the same AdamW
 * step, bit for bit; from a briefly fine-tuned model, some of whose samples are
 * right and clean and some not. */
static void rft_step_is_sft_on_kept_samples(void **state) {
    (void)state;
    cli_world();
    world w;
    world_open(&w, TS_TEMPLATE_R1);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/sft", tu_dir);
    ts_model a, b;
    assert_int_equal(ts_checkpoint_load(&a, dir, TS_MODEL_TRAIN), TS_OK);
    assert_int_equal(ts_checkpoint_load(&b, dir, TS_MODEL_TRAIN), TS_OK);
    ts_grpo_train_opts o = small_opts();
    o.algo = TS_ALGO_RFT;
    o.grpo.beta = 0;
    ts_train_opts lo = loop_opts(1);
    lo.grad_clip = 0.0f;
    ts_train_result res;
    assert_int_equal(ts_grpo_train(&a, NULL, &w.tok, &w.prompts, NULL, &o, &lo, &res), TS_OK);

    ts_rollout_sampler smp;
    assert_int_equal(ts_rollout_sampler_create(&smp, &b, &w.tok, &w.prompts, &o), TS_OK);
    ts_rng order;
    ts_rng_seed(&order, lo.seed, TS_STREAM_DATA);
    ts_rollout r = {0};
    assert_int_equal(ts_grpo_rollout(&smp, &order, 0, &r), TS_OK);
    int n = o.P * o.G, N = n * r.T, V = w.cfg.vocab_size, kept = 0, dropped = 0;
    long kept_tokens = 0;
    float *wt = calloc((size_t)N, sizeof(float));
    for (int i = 0; i < n; i++) {
        const int *tok = r.tokens + (size_t)i * r.T + r.prompt_len[i];
        int c = r.completion_len[i];
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(bpe_decode(&w.tok, tok, (size_t)(tok[c - 1] == bpe_special_id(&w.tok, BPE_EOS) ? c - 1 : c),
                                    &text, &len),
                         TS_OK);
        ts_reward rw = ts_reward_of(o.tmpl, text, w.set.ex[smp.info.problem[i / o.G]].answer, &o.reward);
        free(text);
        int keep = rw.correct && rw.format_ok;
        kept += keep;
        dropped += !keep;
        for (int t = 0; t < r.T && keep; t++) wt[(size_t)i * r.T + t] = 1.0f;
        kept_tokens += keep ? c : 0;
    }
    printf("  rft: %d of %d samples kept (right and clean), %ld tokens\n", kept, n, kept_tokens);
    assert_true(kept >= 1 && dropped >= 1);
    ts_model_zero_grad(&b);
    assert_int_equal(ts_model_forward_logits(&b, r.tokens, n, r.T), TS_OK);
    memset(b.d_logits, 0, (size_t)N * V * sizeof(float));
    ts_ce_result ce;
    assert_int_equal(ts_loss_crossentropy(&ce, b.d_logits, NULL, b.logits, r.targets, wt, (double)kept_tokens, N, V),
                     TS_OK);
    assert_int_equal(ts_model_backward_from(&b, b.d_logits, NULL, 0.0f), TS_OK);
    adamw_step(&b.params, &lo.adamw, lr_schedule(0, lo.warmup, lo.steps, lo.lr, lo.min_lr), 1);
    assert_memory_equal(a.params.data, b.params.data, a.params.numel * sizeof(float));
    free(wt);
    ts_rollout_free(&r);
    ts_rollout_sampler_free(&smp);
    ts_model_free(&a);
    ts_model_free(&b);
    world_close(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reward_table),
        cmocka_unit_test(rollouts),
        cmocka_unit_test(equal_rewards_leave_weights_bit_identical),
        cmocka_unit_test(mu1_beta0_step_is_reinforce),
        cmocka_unit_test(value_loss_gradient),
        cmocka_unit_test(per_token_advantages_generalise_grpo),
        cmocka_unit_test(cli_rejects_bad_flags),
        cmocka_unit_test_setup_teardown(cli_runs_and_resumes, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test_setup_teardown(rft_step_is_sft_on_kept_samples, tu_setup_dir, tu_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

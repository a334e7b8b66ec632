/* Chapter 7: chat templates (against a real Jinja), the answer/format checker,
 * pass@k and maj@k, SFT's masked batches and loss (prompt positions get no
 * gradient), a tiny SFT run with resume, and the evaluation harness. */
#include "posttrain_fixtures.h"

#include <cjson/cJSON.h>

#include "core/ops.h"
#include "data/answer.h"
#include "data/chat.h"
#include "data/sft_batch.h"
#include "io/fileio.h"
#include "model/checkpoint.h"
#include "train/evaluate.h"
#include "train/loss.h"
#include "train/sft.h"

/* ---- the format checker and the answer parser ------------------------------ */

static void format_table(void **state) {
    (void)state;
    static const struct {
        const char *response;
        ts_format want;
        const char *answer; /* what ts_answer_extract gives, NULL = none */
    } cases[] = {
        {"<think>3+4=7</think><answer>7</answer>", TS_FORMAT_OK, "7"},
        {"<think>\n3+4=7\n</think>\n<answer> 7 </answer>\n", TS_FORMAT_OK, "7"},
        {"<think>3+4=8</think><answer>8</answer>", TS_FORMAT_OK, "8"}, /* wrong but clean */
        {"<think>x</think>", TS_FORMAT_NO_ANSWER, NULL},
        {"<answer>7</answer>", TS_FORMAT_NO_THINK, "7"},
        {"<think>x</think><answer>7", TS_FORMAT_NO_ANSWER, NULL},
        {"7", TS_FORMAT_NO_THINK, NULL},
        {"", TS_FORMAT_NO_THINK, NULL},
        {"<think>a</think><think>b</think><answer>7</answer>", TS_FORMAT_REPEATED, "7"},
        {"<think>a</think><answer>7</answer><answer>8</answer>", TS_FORMAT_REPEATED, "7"},
        {"<answer>7</answer><think>a</think>", TS_FORMAT_ORDER, "7"},
        {"<think>a<answer>7</answer></think>", TS_FORMAT_ORDER, "7"},
        {"<think>a</think><answer></answer>", TS_FORMAT_EMPTY_ANSWER, NULL},
        {"<think>a</think><answer>  \n</answer>", TS_FORMAT_EMPTY_ANSWER, NULL},
        {"So <think>a</think><answer>7</answer>", TS_FORMAT_OUTSIDE, "7"},
        {"<think>a</think> so <answer>7</answer>", TS_FORMAT_OUTSIDE, "7"},
        {"<think>a</think><answer>7</answer> done", TS_FORMAT_OUTSIDE, "7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ts_format got = ts_format_check(cases[i].response);
        if (got != cases[i].want)
            fail_msg("%s: format %s, want %s", cases[i].response, ts_format_name(got), ts_format_name(cases[i].want));
        char a[32];
        int has = ts_answer_extract(cases[i].response, a, sizeof a);
        assert_int_equal(has, cases[i].answer != NULL);
        if (has) assert_string_equal(a, cases[i].answer);
    }
    assert_true(ts_answer_matches(" 7\n", "7"));
    assert_false(ts_answer_matches("07", "7"));
    assert_false(ts_answer_matches("", ""));
    ts_answer_score s = ts_answer_score_of("<think>a</think><answer>12</answer>", "12");
    assert_true(s.correct && s.has_answer && s.format == TS_FORMAT_OK);
    s = ts_answer_score_of("<think>a</think><answer>12</answer> x", "12");
    assert_true(s.correct && s.format == TS_FORMAT_OUTSIDE); /* right, but not clean: rejection sampling drops it */
    char small[2];
    assert_false(ts_answer_extract("<answer>123</answer>", small, sizeof small)); /* does not fit: no answer */
}

/* ---- pass@k and maj@k ---------------------------------------------------------- */

/* pass@k by definition: over every k-subset of n samples (c correct), the fraction holding a correct one. */
static double pass_at_k_enumerated(int n, int c, int k) {
    long subsets = 0, hit = 0;
    for (unsigned mask = 0; mask < 1u << n; mask++) {
        if (__builtin_popcount(mask) != k) continue;
        subsets++;
        hit += (mask & ((1u << c) - 1)) != 0; /* samples 0..c-1 are the correct ones */
    }
    return (double)hit / subsets;
}

static void pass_at_k_matches_enumeration(void **state) {
    (void)state;
    for (int n = 1; n <= 10; n++)
        for (int c = 0; c <= n; c++)
            for (int k = 1; k <= n; k++) {
                double want = pass_at_k_enumerated(n, c, k), got = ts_pass_at_k(n, c, k);
                if (fabs(got - want) > 1e-12) fail_msg("pass@%d n=%d c=%d: %.15g, want %.15g", k, n, c, got, want);
            }
    assert_true(isnan(ts_pass_at_k(4, 1, 5)) && isnan(ts_pass_at_k(4, 5, 1)) && isnan(ts_pass_at_k(4, 1, 0)));
    /* large n: no overflow, pass@1 = c/n, and the naive 1-(1-c/n)^k (biased) is not what it computes */
    assert_true(fabs(ts_pass_at_k(5000, 17, 1) - 17.0 / 5000) < 1e-14);
    double unbiased = ts_pass_at_k(10, 2, 5), naive = 1 - pow(1 - 0.2, 5);
    assert_true(fabs(unbiased - 7.0 / 9.0) < 1e-12); /* 1 - C(8,5)/C(10,5) = 1 - 56/252 */
    assert_true(fabs(unbiased - naive) > 0.1);
}

static void majority_vote(void **state) {
    (void)state;
    const char *a[] = {"7", "8", "7", NULL, "8", "7"};
    assert_string_equal(a[ts_majority_vote(a, 6)], "7");
    const char *tie[] = {"", "9", "8", "8", "9"}; /* 9 and 8 tie: 9 occurs first */
    assert_string_equal(tie[ts_majority_vote(tie, 5)], "9");
    const char *none[] = {NULL, "", NULL};
    assert_int_equal(ts_majority_vote(none, 3), -1);
    const char *one[] = {NULL, "3"};
    assert_int_equal(ts_majority_vote(one, 2), 1);
}

/* ---- a tokenizer and a tiny model ---------------------------------------------- */




/* ---- templates ------------------------------------------------------------------ */

static void templates_render_as_jinja_does(void **state) {
    (void)state;
    char *cfg = NULL;
    assert_int_equal(ts_chat_tokenizer_config(&cfg), TS_OK);
    assert_int_equal(ts_write_file_atomic(tu_path("tokenizer_config.json"), cfg, strlen(cfg)), TS_OK);
    free(cfg);
    static const char *const pairs[][2] = {
        {"What is 347+28?", "<think>7+8=15 carry 1</think><answer>375</answer>"},
        {"What is 1+1?", "<think>\n1+1=2\n</think>\n<answer>2</answer>"},
        {"x", "no tags at all"},
        {"Quote \" and \\ and {{ braces }}", "<think></think><answer>{% raw %}</answer>"},
    };
    static const char *const jinja_name[TS_TEMPLATE_N] = {"default", "r1_zero", "question"};
    cJSON *cases = cJSON_CreateArray();
    for (int t = 0; t < TS_TEMPLATE_N; t++)
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            char *p = NULL, *r = NULL;
            assert_int_equal(ts_chat_render_prompt((ts_template)t, pairs[i][0], &p), TS_OK);
            assert_int_equal(ts_chat_render_response((ts_template)t, pairs[i][1], &r), TS_OK);
            char *full = malloc(strlen(p) + strlen(r) + 1);
            strcpy(full, p);
            strcat(full, r);
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "template", jinja_name[t]);
            cJSON_AddStringToObject(c, "prompt", pairs[i][0]);
            cJSON_AddStringToObject(c, "response", pairs[i][1]);
            cJSON_AddStringToObject(c, "want_prompt", p);
            cJSON_AddStringToObject(c, "want_full", full);
            cJSON_AddItemToArray(cases, c);
            free(p);
            free(r);
            free(full);
        }
    char *text = cJSON_Print(cases);
    cJSON_Delete(cases);
    assert_int_equal(ts_write_file_atomic(tu_path("cases.json"), text, strlen(text)), TS_OK);
    cJSON_free(text);
    /* the R1-Zero prompt is the paper's Table 1 */
    char *p = NULL;
    assert_int_equal(ts_chat_render_prompt(TS_TEMPLATE_R1_ZERO, "What is 2+2?", &p), TS_OK);
    assert_non_null(strstr(p, "The assistant first thinks about the reasoning process in the mind and then provides "
                              "the user with the answer."));
    assert_non_null(strstr(p, "User: What is 2+2?. Assistant:"));
    free(p);
    assert_int_equal(ts_chat_render_prompt(TS_TEMPLATE_QUESTION, "What is 2+2?", &p), TS_OK);
    assert_string_equal(p, "What is 2+2?"); /* as the pretraining text asks it */
    free(p);
    assert_int_equal(ts_chat_render_prompt(TS_TEMPLATE_R1, "Q", &p), TS_OK);
    assert_string_equal(p, "<|bos|><|user|>Q<|assistant|><think>\n");
    free(p);

    const char *src = getenv("TS_SRC");
    char out[4096];
    int rc = tu_run(out, sizeof out, "command -v python3 >/dev/null || exit 77; python3 '%s/scripts/ch07-jinja-render.py' '%s'",
                    src ? src : ".", tu_dir);
    if (rc == 77) {
        fprintf(stderr, "[  SKIP    ] templates vs Jinja: python3 with jinja2 is not installed (Debian: python3-jinja2)\n");
        skip();
    }
    if (rc != 0) fail_msg("Jinja renders differently (exit %d):\n%s", rc, out);
}

/* ---- SFT rows: the mask --------------------------------------------------------- */

static void sft_row_masks_prompt_and_padding(void **state) {
    (void)state;
    int ids[] = {10, 11, 12, 20, 21, 22}; /* prompt 10 11 12, response 20 21 22 (22 = eos) */
    ts_sft_seq s = {ids, 6, 3};
    int tokens[8], targets[8];
    ts_sft_fill_row(&s, 8, 99, tokens, targets);
    int want_tokens[8] = {10, 11, 12, 20, 21, 99, 99, 99};
    int want_targets[8] = {TS_IGNORE, TS_IGNORE, 20, 21, 22, TS_IGNORE, TS_IGNORE, TS_IGNORE};
    assert_memory_equal(tokens, want_tokens, sizeof tokens);
    assert_memory_equal(targets, want_targets, sizeof targets);
}

/* One SFT batch of the tiny problems with the r1 template. */
static void sft_batch(const bpe_tokenizer *tok, ts_sft_data *d, ts_batch *b, int B) {
    ts_examples set;
    pt_problems(&set, B, 0);
    assert_int_equal(ts_sft_data_build(d, tok, TS_TEMPLATE_R1, &set, 96, "test"), TS_OK);
    ts_examples_free(&set);
    assert_int_equal(ts_batch_alloc(b, B, d->max_len - 1, 0), TS_OK);
    b->T = d->max_len - 1;
    for (int r = 0; r < B; r++) ts_sft_fill_row(&d->seq[r], b->T, d->pad_id, b->tokens + r * b->T, b->targets + r * b->T);
}

/* "Prompt tokens get zero gradient", precisely: the loss never asks the model to
 * predict a prompt token (or anything after the end), so dL/dlogits is exactly
 * zero at those positions, and the gradient of every weight is bit for bit the
 * gradient of the full next-token loss with weight 0 on those positions. The
 * prompt still *conditions* the response (its tokens' embeddings get gradient
 * through attention); what padding says changes no gradient bit at all. */
static void prompt_positions_get_zero_gradient(void **state) {
    (void)state;
    bpe_tokenizer tok;
    pt_tokenizer(&tok, NULL);
    ts_config c = pt_tiny_mla(tok.vocab_size, 96);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, TS_MODEL_GRADS), TS_OK);
    ts_model_init_weights(&m, 5);
    ts_sft_data d;
    ts_batch b;
    sft_batch(&tok, &d, &b, 4);
    int N = b.B * b.T, V = c.vocab_size;
    assert_int_equal(ts_model_reserve(&m, b.B, b.T), TS_OK);
    ts_model_zero_grad(&m);
    float loss;
    int counted;
    assert_int_equal(ts_sft_step(&m, &b, &loss, &counted), TS_OK);
    int want_counted = 0, padded = 0;
    for (int r = 0; r < b.B; r++) {
        want_counted += d.seq[r].n - d.seq[r].n_prompt;
        padded += d.seq[r].n - 1 < b.T;
    }
    assert_int_equal(counted, want_counted);
    assert_true(padded > 0); /* the batch has padding to check */
    for (int r = 0; r < b.B; r++)
        for (int t = 0; t < b.T; t++) {
            const float *g = m.d_logits + ((size_t)r * b.T + t) * V;
            int response = t + 1 >= d.seq[r].n_prompt && t + 1 < d.seq[r].n, nonzero = 0;
            for (int v = 0; v < V; v++) nonzero |= g[v] != 0.0f;
            if (nonzero != response) fail_msg("row %d position %d: gradient %s, but it is %s", r, t,
                                              nonzero ? "non-zero" : "zero", response ? "a response target" : "masked");
        }
    size_t P = m.params.numel;
    float *g_sft = malloc(P * sizeof(float));
    memcpy(g_sft, m.params.grad, P * sizeof(float));

    /* the same gradient from the unmasked next-token loss with weight 0 on prompt and padding */
    int *full = malloc((size_t)N * sizeof(int));
    float *w = malloc((size_t)N * sizeof(float));
    for (int r = 0; r < b.B; r++)
        for (int t = 0; t < b.T; t++) {
            int i = r * b.T + t, resp = b.targets[i] != TS_IGNORE;
            full[i] = t + 1 < d.seq[r].n ? d.seq[r].ids[t + 1] : d.pad_id;
            w[i] = resp ? 1.0f : 0.0f;
        }
    ts_model_zero_grad(&m);
    assert_int_equal(ts_model_forward_logits(&m, b.tokens, b.B, b.T), TS_OK);
    memset(m.d_logits, 0, (size_t)N * V * sizeof(float));
    ts_ce_result ce;
    assert_int_equal(ts_loss_crossentropy(&ce, m.d_logits, NULL, m.logits, full, w, counted, N, V), TS_OK);
    assert_int_equal(ts_model_backward_from(&m, m.d_logits, NULL, 1.0f), TS_OK);
    assert_memory_equal(m.params.grad, g_sft, P * sizeof(float));
    assert_true(fabsf(ce.loss + m.aux_loss - loss) <= 1e-6f * fabsf(loss));

    /* different padding tokens: the same bits */
    for (int r = 0; r < b.B; r++)
        for (int t = d.seq[r].n - 1; t < b.T; t++) b.tokens[r * b.T + t] = (t * 7 + r) % V;
    ts_model_zero_grad(&m);
    assert_int_equal(ts_sft_step(&m, &b, &loss, &counted), TS_OK);
    assert_memory_equal(m.params.grad, g_sft, P * sizeof(float));

    /* and the prompt is context: its tokens' embedding rows do get gradient */
    int prompt_tok = b.tokens[0], C = c.hidden_size, moved = 0;
    for (int i = 0; i < C; i++) moved |= m.g.embed_tokens[(size_t)prompt_tok * C + i] != 0.0f;
    assert_true(moved);
    free(full);
    free(w);
    free(g_sft);
    ts_batch_free(&b);
    ts_sft_data_free(&d);
    ts_model_free(&m);
    bpe_free(&tok);
}

/* ---- a tiny SFT run: the response loss goes down; resume is exact ---------------- */

static ts_train_opts sft_opts(const char *out, long steps) {
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

static void sft_lowers_response_loss_and_resumes(void **state) {
    (void)state;
    bpe_tokenizer tok;
    pt_tokenizer(&tok, NULL);
    ts_config c = pt_tiny_mla(tok.vocab_size, 96);
    ts_examples train_set, test_set;
    pt_problems(&train_set, 24, 0);
    pt_problems(&test_set, 8, 5);
    ts_sft_data train, test;
    assert_int_equal(ts_sft_data_build(&train, &tok, TS_TEMPLATE_R1, &train_set, 96, "train"), TS_OK);
    assert_int_equal(ts_sft_data_build(&test, &tok, TS_TEMPLATE_R1, &test_set, 96, "test"), TS_OK);
    char a_dir[256], b_dir[256];
    snprintf(a_dir, sizeof a_dir, "%s/a", tu_dir);
    snprintf(b_dir, sizeof b_dir, "%s/b", tu_dir);

    ts_model a, b;
    assert_int_equal(ts_model_create(&a, &c, TS_MODEL_TRAIN), TS_OK);
    ts_model_init_weights(&a, 9);
    float before = ts_sft_eval_loss(&a, &test, 4, 0);
    ts_train_opts o = sft_opts(a_dir, 40);
    ts_train_result r;
    assert_int_equal(ts_sft(&a, &train, &test, 0, &o, &r), TS_OK);
    float after = ts_sft_eval_loss(&a, &test, 4, 0);
    assert_true(isfinite(before) && isfinite(after));
    if (!(after < 0.7f * before)) fail_msg("held-out response loss %.4f -> %.4f: SFT did not learn", before, after);
    assert_true(fabsf(after - r.final_val_loss) < 1e-6f);

    /* the same run stopped at step 17 and resumed: the same weights, bit for bit */
    assert_int_equal(ts_model_create(&b, &c, TS_MODEL_TRAIN), TS_OK);
    ts_model_init_weights(&b, 9);
    ts_train_opts ob = sft_opts(b_dir, 40);
    ob.stop_after = 17; /* 24 pairs, batch 4: past the first epoch boundary (step 6) */
    assert_int_equal(ts_sft(&b, &train, &test, 0, &ob, &r), TS_OK);
    ts_model_free(&b);
    assert_int_equal(ts_model_create(&b, &c, TS_MODEL_TRAIN), TS_OK);
    ob.stop_after = 0;
    ob.resume = 1;
    assert_int_equal(ts_sft(&b, &train, &test, 0, &ob, &r), TS_OK);
    assert_int_equal(r.steps_run, 23);
    assert_memory_equal(a.params.data, b.params.data, a.params.numel * sizeof(float));
    char path[300];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", a_dir);
    (void)path; /* written only with a tokenizer_json (the CLI gives one) */

    ts_model_free(&a);
    ts_model_free(&b);
    ts_sft_data_free(&train);
    ts_sft_data_free(&test);
    ts_examples_free(&train_set);
    ts_examples_free(&test_set);
    bpe_free(&tok);
}

/* ---- the evaluation harness -------------------------------------------------------- */

typedef struct {
    int count;
    char responses[64][128];
} collected;

static ts_status collect(void *ctx, int problem, int sample, const char *response, const ts_answer_score *s) {
    collected *c = ctx;
    if (c->count < 64) snprintf(c->responses[c->count], 128, "%d/%d %s %d", problem, sample, response, s->correct);
    c->count++;
    return TS_OK;
}

/* A model trained for a few SFT steps, evaluated with many sequences at once and
 * with one at a time: the same completions (each sequence has its own RNG stream
 * and starts from a copy of its prompt's cache), and a consistent summary. */
static void evaluate_batched_equals_one_at_a_time(void **state) {
    (void)state;
    bpe_tokenizer tok;
    pt_tokenizer(&tok, NULL);
    ts_config c = pt_tiny_mla(tok.vocab_size, 96);
    ts_examples set;
    pt_problems(&set, 12, 0);
    ts_sft_data train;
    assert_int_equal(ts_sft_data_build(&train, &tok, TS_TEMPLATE_R1, &set, 96, "train"), TS_OK);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, TS_MODEL_TRAIN), TS_OK);
    ts_model_init_weights(&m, 9);
    ts_train_opts o = sft_opts(NULL, 30);
    ts_train_result r;
    assert_int_equal(ts_sft(&m, &train, NULL, 0, &o, &r), TS_OK);

    ts_eval_opts e = ts_eval_opts_default();
    e.n_samples = 5;
    e.max_new = 20;
    e.quiet = 1;
    e.batch = 64;
    ts_eval_problem *many = calloc((size_t)set.n, sizeof *many), *one = calloc((size_t)set.n, sizeof *one);
    collected *cm = calloc(1, sizeof *cm), *co = calloc(1, sizeof *co);
    assert_int_equal(ts_evaluate(&m, &tok, &set, &e, many, collect, cm), TS_OK);
    e.batch = 1;
    assert_int_equal(ts_evaluate(&m, &tok, &set, &e, one, collect, co), TS_OK);
    assert_int_equal(cm->count, set.n * e.n_samples);
    assert_int_equal(co->count, cm->count);
    for (int i = 0; i < 64 && i < cm->count; i++) assert_string_equal(cm->responses[i], co->responses[i]);
    assert_memory_equal(many, one, (size_t)set.n * sizeof *many);
    int generated = 0;
    for (int i = 0; i < set.n; i++) {
        assert_int_equal(many[i].n, 5);
        assert_true(many[i].correct <= 5 && many[i].clean <= 5);
        generated += many[i].len_sum > 0;
    }
    assert_true(generated > 0);

    /* near-zero temperature: every sample is the greedy completion, which it can
     * only be if each sequence starts from a true copy of its prompt's cache */
    e.temperature = 1e-5f;
    e.n_samples = 3;
    ts_eval_problem *cold = calloc((size_t)set.n, sizeof *cold);
    assert_int_equal(ts_evaluate(&m, &tok, &set, &e, cold, NULL, NULL), TS_OK);
    for (int i = 0; i < set.n; i++) {
        assert_int_equal(cold[i].correct, 3 * cold[i].greedy_correct);
        assert_int_equal(cold[i].clean, 3 * cold[i].greedy_format);
        assert_int_equal(cold[i].len_sum, 3 * cold[i].greedy_len);
    }
    free(cold);
    e.temperature = 1.0f;
    e.n_samples = 5;
    assert_int_equal(ts_eval_write(tu_path("e.csv"), tu_path("e.json"), "tiny", &set, many, &e), TS_OK);
    char *csv = NULL;
    size_t n = 0;
    assert_int_equal(ts_read_file(tu_path("e.csv"), &csv, &n), TS_OK);
    assert_non_null(strstr(csv, "model,difficulty,problems,samples,greedy_pass1,greedy_format,pass1,format_rate,"
                                "mean_len,maj_at_n,pass_at_1,pass_at_2,pass_at_4,pass_at_5\n"));
    assert_int_equal(tu_count_lines(csv), 4); /* header, all, difficulty 0, difficulty 1 */
    /* the "all" row: pass@1 is the mean of c/n, and pass@k grows with k */
    char *row = strstr(csv, "\ntiny,all,12,5,");
    assert_non_null(row);
    double v[10];
    assert_int_equal(sscanf(row + strlen("\ntiny,all,12,5,"), "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1],
                            &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]),
                     10);
    double pass1 = 0;
    for (int i = 0; i < set.n; i++) pass1 += many[i].correct / 5.0 / set.n;
    assert_true(fabs(v[2] - pass1) < 1e-5 && fabs(v[6] - pass1) < 1e-5);
    assert_true(v[6] <= v[7] && v[7] <= v[8] && v[8] <= v[9]);
    free(csv);
    free(many);
    free(one);
    free(cm);
    free(co);
    ts_model_free(&m);
    ts_sft_data_free(&train);
    ts_examples_free(&set);
    bpe_free(&tok);
}

/* ---- bad input: one line naming the file, line and field ------------------------ */

static void bad_jsonl_is_named(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
        int need_response, need_answer;
    } cases[] = {
        {"{\"prompt\": \"a\", \"response\": \"r\"}\nnot json\n", ":2: not a JSON object", 1, 0},
        {"{\"prompt\": 3}\n", ":1: field \"prompt\"", 0, 0},
        {"{\"prompt\": \"a\"}\n", ":1: field \"response\" is missing", 1, 0},
        {"{\"prompt\": \"a\", \"response\": \"no tag\"}\n", ":1: field \"answer\" is missing", 0, 1},
        {"{\"prompt\": \"a\", \"answer\": \"1\", \"difficulty\": 1.5}\n", ":1: field \"difficulty\"", 0, 1},
        {"\n\n", "no examples", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = tu_path("bad.jsonl");
        assert_int_equal(ts_write_file_atomic(path, cases[i].text, strlen(cases[i].text)), TS_OK);
        ts_examples set;
        assert_int_equal(ts_examples_load(&set, path, cases[i].need_response, cases[i].need_answer), TS_ERR_FORMAT);
        if (!strstr(ts_last_error(), cases[i].want)) fail_msg("'%s' does not say '%s'", ts_last_error(), cases[i].want);
    }
    /* today's files: the answer comes from the response's tag, difficulty defaults to 0; numbers are answers too */
    const char *ok = "{\"prompt\": \"p\", \"response\": \"<think>x</think><answer>42</answer>\"}\n"
                     "{\"prompt\": \"q\", \"answer\": 7, \"difficulty\": 2}\n";
    assert_int_equal(ts_write_file_atomic(tu_path("ok.jsonl"), ok, strlen(ok)), TS_OK);
    ts_examples set;
    assert_int_equal(ts_examples_load(&set, tu_path("ok.jsonl"), 0, 1), TS_OK);
    assert_int_equal(set.n, 2);
    assert_string_equal(set.ex[0].answer, "42");
    assert_int_equal(set.ex[0].difficulty, 0);
    assert_string_equal(set.ex[1].answer, "7");
    assert_int_equal(set.ex[1].difficulty, 2);
    ts_examples_free(&set);

    /* the command: exit status 2 and one line */
    char out[2048];
    int rc = tu_run(out, sizeof out, "%s sft --init %s/nothing --train %s --out %s/o --quiet", tu_cli(), tu_dir,
                    tu_path("ok.jsonl"), tu_dir);
    assert_int_equal(rc, 2);
    assert_int_equal(tu_count_lines(out), 1);
    rc = tu_run(out, sizeof out, "%s evaluate --model %s/nothing --problems %s --template r2", tu_cli(), tu_dir,
                tu_path("ok.jsonl"));
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "r1 or r1-zero"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_table),
        cmocka_unit_test(pass_at_k_matches_enumeration),
        cmocka_unit_test(majority_vote),
        cmocka_unit_test_setup_teardown(templates_render_as_jinja_does, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test(sft_row_masks_prompt_and_padding),
        cmocka_unit_test(prompt_positions_get_zero_gradient),
        cmocka_unit_test_setup_teardown(sft_lowers_response_loss_and_resumes, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test_setup_teardown(evaluate_batched_equals_one_at_a_time, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test_setup_teardown(bad_jsonl_is_named, tu_setup_dir, tu_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

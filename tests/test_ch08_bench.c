/* The post-training benchmark's code path (`tinyseek bench --rollout N`,
 * src/cli/bench_rollout.c), on chapter 8's model at a tiny size: it
 * generates exactly N x new tokens, writes the rollout batch it trained on
 * (prompt, completion, targets that are the next tokens, rewards) with the
 * checksum it reports, and its GRPO steps move the weights by what AdamW's
 * first steps can (at most lr each). Nothing here is timed: speed is make
 * bench's business, never a test's (DESIGN.md section 6). */
#include "testutil.h"

#include "io/safetensors.h"
#include "model/config.h"

/* The value of key=... on the RESULT line of @p out, or NAN. */
static double result_value(const char *out, const char *key) {
    const char *line = strstr(out, "RESULT ");
    if (!line) return NAN;
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static const char *config_path(void) {
    static char path[512];
    const char *root = getenv("TS_SRC") ? getenv("TS_SRC") : ".";
    snprintf(path, sizeof path, "%s/configs/ch07-base.json", root);
    return path;
}

static void test_rollout_bench_generates_and_trains(void **state) {
    (void)state;
    enum { N = 8, G = 4, P = 3, K = 5, T = P + K };
    char out[8192];
    int rc = tu_run(out, sizeof out,
                    "'%s' bench --config '%s' --no-train --no-gen --sgemm 0 --rollout %d --group %d --prompt %d "
                    "--new %d --rollout-reps 1 --grpo-steps 1 --threads 1 --out '%s'",
                    tu_cli(), config_path(), N, G, P, K, tu_dir);
    if (rc != 0) fail_msg("tinyseek bench --rollout failed (exit %d):\n%s", rc, out);
    assert_int_equal((int)result_value(out, "rollout_n"), N);
    assert_int_equal((int)result_value(out, "rollout_tokens"), N * K); /* nothing stopped early */
    double dw = result_value(out, "grpo_max_dw"), norm = result_value(out, "grpo_grad_norm");
    /* two AdamW steps at lr 1e-4 (one untimed, one timed), no weight decay: each moves a weight by
     * at most lr (|m^/sqrt(v^)| <= 1 while beta1^2 <= beta2), and a weight with a gradient by about lr;
     * the margin is float rounding of weights near 1 (the norms) */
    if (!(dw > 0.5e-4 && dw <= 2.01e-4)) fail_msg("largest weight change %g, expected in (5e-5, 2e-4] (plus rounding)", dw);
    if (!(norm > 0 && isfinite(norm))) fail_msg("first gradient norm %g", norm);

    ts_config cfg;
    assert_int_equal(ts_config_load(&cfg, config_path()), TS_OK);
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, tu_path("bench_rollout.safetensors")), TS_OK);
    const ts_st_tensor *tt = ts_safetensors_find(&st, "tokens");
    assert_non_null(tt);
    assert_int_equal(tt->ndim, 2);
    assert_int_equal(tt->shape[0], N);
    assert_int_equal(tt->shape[1], T);
    assert_string_equal(ts_safetensors_meta(&st, "group"), "4");
    float tokens[N * T], targets[N * T], prompt[P], rewards[N];
    assert_int_equal(ts_safetensors_read_f32(&st, "tokens", tokens, N * T), TS_OK);
    assert_int_equal(ts_safetensors_read_f32(&st, "targets", targets, N * T), TS_OK);
    assert_int_equal(ts_safetensors_read_f32(&st, "prompt", prompt, P), TS_OK);
    assert_int_equal(ts_safetensors_read_f32(&st, "rewards", rewards, N), TS_OK);
    ts_safetensors_close(&st);
    long long sum = 0;
    for (int b = 0; b < N; b++) {
        for (int t = 0; t < T; t++) {
            int i = b * T + t, tok = (int)tokens[i];
            assert_true(tok >= 0 && tok < cfg.vocab_size);
            sum += (long long)tok * (i % 1000 + 1);
            if (t < P) assert_int_equal(tok, (int)prompt[t]); /* every sequence starts with the prompt */
            /* the completion mask: positions P-1 .. T-2 predict the K generated tokens */
            if (t >= P - 1 && t < T - 1) assert_int_equal((int)targets[i], (int)tokens[i + 1]);
            else assert_int_equal((int)targets[i], -1);
        }
        assert_true(rewards[b] >= 0 && rewards[b] < 1);
    }
    /* the checksum make bench pairs with the twin's run on the same file */
    assert_true((double)sum == result_value(out, "rollout_sum"));
}

static void test_rollout_bench_refuses_a_group_that_does_not_divide(void **state) {
    (void)state;
    char out[4096];
    int rc = tu_run(out, sizeof out, "'%s' bench --config '%s' --no-train --no-gen --sgemm 0 --rollout 10 --group 4",
                    tu_cli(), config_path());
    if (rc != 2 || tu_count_lines(out) != 1 || !strstr(out, "--rollout 10") || !strstr(out, "--group 4"))
        fail_msg("expected exit 2 and one line naming --rollout 10 and --group 4; got exit %d:\n%s", rc, out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollout_bench_generates_and_trains, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test(test_rollout_bench_refuses_a_group_that_does_not_divide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

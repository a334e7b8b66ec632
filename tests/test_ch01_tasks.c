/* Chapter 1: the toy arithmetic tasks, their scratchpads, the split and the answer checker. */
#include "testutil.h"

#include <sys/stat.h>

#include "data/tasks.h"

/* ---- helpers ----------------------------------------------------------------- */

static task_config config(unsigned ops, int min_digits, int max_digits) {
    task_config c;
    task_config_default(&c);
    c.ops = ops;
    c.min_digits = min_digits;
    c.max_digits = max_digits;
    return c;
}

static const unsigned ALL_OPS = TASK_OP_BIT(TASK_ADD) | TASK_OP_BIT(TASK_SUB) | TASK_OP_BIT(TASK_MUL);

static int digit_at(unsigned long long x, int col) {
    for (int i = 0; i < col; i++) x /= 10;
    return (int)(x % 10);
}

/* Read "What is A?B?" back and compute the result with C arithmetic. */
static void parse_prompt(const char *prompt, unsigned long long *a, char *op, unsigned long long *b) {
    char q = 0;
    assert_int_equal(sscanf(prompt, "What is %llu%c%llu%c", a, op, b, &q), 4);
    assert_int_equal(q, '?');
}

/*
 * Check every step of a scratchpad against the operands: the column's digits,
 * the carry/borrow coming in (exactly what the step before wrote), the
 * arithmetic of the step, and finally the answer read off the steps the way
 * tasks.h describes it.
 */
static void check_scratchpad(const task_problem *p, const task_text *t) {
    unsigned long long a = p->a, b = p->b;
    int columns = p->op == TASK_ADD ? task_num_digits(a > b ? a : b) : task_num_digits(a);
    const char *s = t->scratchpad;
    int carry = 0;
    char written[TASK_MAX_DIGITS + 2];
    int n_written = 0;
    for (int col = 0; col < columns; col++) {
        if (col) {
            assert_int_equal(strncmp(s, " ; ", 3), 0);
            s += 3;
        }
        int x = digit_at(a, col), y = p->op == TASK_MUL ? (int)b : digit_at(b, col), used = 0;
        int in = 0, result = 0, out = 0;
        if (p->op == TASK_ADD) {
            int sx, sy;
            if (carry) assert_int_equal(sscanf(s, "%d+%d+%d=%d carry %d%n", &sx, &sy, &in, &result, &out, &used), 5);
            else assert_int_equal(sscanf(s, "%d+%d=%d carry %d%n", &sx, &sy, &result, &out, &used), 4);
            assert_int_equal(sx, x);
            assert_int_equal(sy, y);
            assert_int_equal(in, carry);
            assert_int_equal(result, x + y + carry);
            assert_int_equal(out, result / 10);
            written[n_written++] = (char)('0' + result % 10);
        } else if (p->op == TASK_SUB) {
            int top, sy;
            if (carry) assert_int_equal(sscanf(s, "%d-%d-%d=%d borrow %d%n", &top, &sy, &in, &result, &out, &used), 5);
            else assert_int_equal(sscanf(s, "%d-%d=%d borrow %d%n", &top, &sy, &result, &out, &used), 4);
            assert_int_equal(top, x + 10 * out); /* "1x" exactly when this column borrows */
            assert_int_equal(sy, y);
            assert_int_equal(in, carry);
            assert_int_equal(result, top - y - carry);
            assert_true(result >= 0 && result <= 9);
            written[n_written++] = (char)('0' + result);
        } else {
            int sx, sm;
            if (carry) assert_int_equal(sscanf(s, "%d*%d+%d=%d carry %d%n", &sx, &sm, &in, &result, &out, &used), 5);
            else assert_int_equal(sscanf(s, "%d*%d=%d carry %d%n", &sx, &sm, &result, &out, &used), 4);
            assert_int_equal(sx, x);
            assert_int_equal(sm, y);
            assert_int_equal(in, carry);
            assert_int_equal(result, x * y + carry);
            assert_int_equal(out, result / 10);
            written[n_written++] = (char)('0' + result % 10);
        }
        carry = out;
        s += used;
    }
    assert_int_equal(*s, '\0'); /* no steps beyond the columns */
    /* Read the answer off: final carry, then the written digits last step first, no leading zeros. */
    char read[TASK_MAX_DIGITS + 4];
    int n = 0;
    if (carry && p->op != TASK_SUB) read[n++] = (char)('0' + carry);
    assert_int_equal(p->op == TASK_SUB ? carry : 0, 0); /* a >= b never borrows past the top */
    for (int i = n_written - 1; i >= 0; i--) read[n++] = written[i];
    read[n] = '\0';
    const char *r = read;
    while (r[0] == '0' && r[1]) r++;
    assert_string_equal(r, t->answer);
}

/* ---- tests ------------------------------------------------------------------- */

static void known_examples_render_exactly(void **state) {
    (void)state;
    struct {
        task_problem p;
        const char *prompt, *response;
    } cases[] = {
        {{TASK_ADD, 4821, 379}, "What is 4821+379?",
         "<think>1+9=10 carry 1 ; 2+7+1=10 carry 1 ; 8+3+1=12 carry 1 ; 4+0+1=5 carry 0</think><answer>5200</answer>"},
        {{TASK_SUB, 4821, 379}, "What is 4821-379?",
         "<think>11-9=2 borrow 1 ; 12-7-1=4 borrow 1 ; 8-3-1=4 borrow 0 ; 4-0=4 borrow 0</think><answer>4442</answer>"},
        {{TASK_MUL, 4821, 7}, "What is 4821*7?",
         "<think>1*7=7 carry 0 ; 2*7=14 carry 1 ; 8*7+1=57 carry 5 ; 4*7+5=33 carry 3</think><answer>33747</answer>"},
        {{TASK_SUB, 1000, 999}, "What is 1000-999?",
         "<think>10-9=1 borrow 1 ; 10-9-1=0 borrow 1 ; 10-9-1=0 borrow 1 ; 1-0-1=0 borrow 0</think><answer>1</answer>"},
        {{TASK_ADD, 99, 1}, "What is 99+1?", "<think>9+1=10 carry 1 ; 9+0+1=10 carry 1</think><answer>100</answer>"},
        {{TASK_ADD, 0, 0}, "What is 0+0?", "<think>0+0=0 carry 0</think><answer>0</answer>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        task_text t;
        task_render(&cases[i].p, &t);
        assert_string_equal(t.prompt, cases[i].prompt);
        assert_string_equal(t.response, cases[i].response);
        check_scratchpad(&cases[i].p, &t);
    }
}

static void answers_match_c_arithmetic(void **state) {
    (void)state;
    ts_rng rng;
    ts_rng_seed(&rng, 7, TS_STREAM_TEST);
    int seen[TASK_N_OPS] = {0};
    for (int d = 1; d <= TASK_MAX_DIGITS; d++) {
        task_config c = config(ALL_OPS, 1, d);
        for (int i = 0; i < 2000; i++) {
            task_problem p;
            task_sample(&rng, &c, &p);
            task_text t;
            task_render(&p, &t);
            unsigned long long a, b, want = 0;
            char op;
            parse_prompt(t.prompt, &a, &op, &b);
            assert_true(a == p.a && b == p.b);
            if (op == '+') want = a + b;
            else if (op == '-') want = a - b;
            else if (op == '*') want = a * b;
            else fail_msg("unexpected operator '%c' in %s", op, t.prompt);
            assert_true(op != '-' || a >= b); /* never negative */
            seen[p.op]++;
            char buf[32];
            snprintf(buf, sizeof buf, "%llu", want);
            assert_string_equal(t.answer, buf);
            check_scratchpad(&p, &t);
            assert_true(task_check_format(t.response, strlen(t.response)));
            assert_true(task_check_answer(t.response, strlen(t.response), buf));
        }
    }
    for (int k = 0; k < TASK_N_OPS; k++) assert_true(seen[k] > 5000);
}

static void train_and_test_never_overlap(void **state) {
    (void)state;
    /* Two digits make the space small, so a broken split would show up as overlap. */
    task_config c = config(ALL_OPS, 1, 2);
    enum { NTR = 3000, NTE = 300 };
    task_problem *train = malloc(NTR * sizeof *train), *test = malloc(NTE * sizeof *test);
    task_problem *train2 = malloc(NTR * sizeof *train2);
    assert_int_equal(task_generate(&c, 1, TASK_TRAIN, NTR, train), TS_OK);
    assert_int_equal(task_generate(&c, 1, TASK_TEST, NTE, test), TS_OK);
    assert_int_equal(task_generate(&c, 99, TASK_TRAIN, NTR, train2), TS_OK); /* another seed's training set */
    for (int i = 0; i < NTR; i++) {
        assert_int_equal(task_is_test(&train[i]), 0);
        assert_int_equal(task_is_test(&train2[i]), 0);
    }
    for (int j = 0; j < NTE; j++) assert_int_equal(task_is_test(&test[j]), 1);
    for (int j = 0; j < NTE; j++) {
        task_problem ct = task_canonical(&test[j]);
        /* a+b and b+a are one problem: the swapped form is a test problem too */
        if (test[j].op != TASK_SUB) {
            task_problem sw = {test[j].op, test[j].b, test[j].a};
            assert_int_equal(task_is_test(&sw), 1);
        }
        for (int i = 0; i < NTR; i++) {
            for (int k = 0; k < 2; k++) {
                task_problem ci = task_canonical(k ? &train2[i] : &train[i]);
                if (ci.op == ct.op && ci.a == ct.a && ci.b == ct.b)
                    fail_msg("problem %llu%c%llu is in both splits", (unsigned long long)ct.a, task_op_symbol(ct.op),
                             (unsigned long long)ct.b);
            }
        }
    }
    /* Distinct within a split. */
    for (int i = 0; i < NTE; i++)
        for (int j = i + 1; j < NTE; j++)
            assert_false(test[i].op == test[j].op && test[i].a == test[j].a && test[i].b == test[j].b);
    /* The test split is about TASK_TEST_PERMILLE of all problems. */
    ts_rng rng;
    ts_rng_seed(&rng, 3, TS_STREAM_TEST);
    task_config wide = config(ALL_OPS, 1, 9);
    int n_test = 0, N = 200000;
    for (int i = 0; i < N; i++) {
        task_problem p;
        task_sample(&rng, &wide, &p);
        n_test += task_is_test(&p);
    }
    double frac = (double)n_test / N, want = TASK_TEST_PERMILLE / 1000.0;
    assert_true(fabs(frac - want) < 0.005); /* ~7 standard deviations */
    free(train);
    free(test);
    free(train2);
}

static void generation_is_deterministic(void **state) {
    (void)state;
    task_config c = config(ALL_OPS, 1, 4);
    enum { N = 500 };
    task_problem a[N], b[N], d[N];
    assert_int_equal(task_generate(&c, 5, TASK_TRAIN, N, a), TS_OK);
    assert_int_equal(task_generate(&c, 5, TASK_TRAIN, N, b), TS_OK);
    assert_int_equal(task_generate(&c, 6, TASK_TRAIN, N, d), TS_OK);
    assert_memory_equal(a, b, sizeof a);
    int differ = 0;
    for (int i = 0; i < N; i++) differ += a[i].a != d[i].a || a[i].b != d[i].b || a[i].op != d[i].op;
    assert_true(differ > N / 2);
}

static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void dataset_files_same_seed_same_bytes(void **state) {
    (void)state;
    static const char *const files[] = {"pretrain_train.txt", "pretrain_test.txt", "sft_train.jsonl",
                                        "sft_test.jsonl",     "rl_train.jsonl",    "rl_test.jsonl"};
    char d1[64], d2[64], d3[64], d4[64];
    tu_tmpdir(d1);
    tu_tmpdir(d2);
    tu_tmpdir(d3);
    tu_tmpdir(d4);
    task_config c = config(TASK_OP_BIT(TASK_ADD) | TASK_OP_BIT(TASK_SUB), 1, 3);
    task_dataset_stats st;
    assert_int_equal(task_write_datasets(d1, &c, 11, 400, 60, &st), TS_OK);
    assert_int_equal(st.n_train, 400);
    assert_int_equal(st.n_per_op[TASK_ADD] + st.n_per_op[TASK_SUB], 400);
    assert_int_equal(st.n_per_op[TASK_MUL], 0);
    assert_int_equal(task_write_datasets(d2, &c, 11, 400, 60, NULL), TS_OK);
    assert_int_equal(task_write_datasets(d3, &c, 12, 400, 60, NULL), TS_OK);
    assert_int_equal(task_write_datasets(d4, &c, 11, 100, 60, NULL), TS_OK); /* fewer training problems */
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        size_t n1, n2, n3, n4;
        char *f1 = slurp(d1, files[k], &n1), *f2 = slurp(d2, files[k], &n2), *f3 = slurp(d3, files[k], &n3);
        char *f4 = slurp(d4, files[k], &n4);
        assert_int_equal(n1, n2);
        assert_memory_equal(f1, f2, n1);
        assert_true(n1 != n3 || memcmp(f1, f3, n1) != 0);
        if (strstr(files[k], "test")) { /* the test set does not depend on --train */
            assert_int_equal(n1, n4);
            assert_memory_equal(f1, f4, n1);
        }
        int lines = 0;
        for (size_t i = 0; i < n1; i++) lines += f1[i] == '\n';
        assert_int_equal(lines, strstr(files[k], "test") ? 60 : 400);
        free(f1);
        free(f2);
        free(f3);
        free(f4);
    }
    /* The three products of a split hold the same problems in the same order. */
    size_t np, ns, nr;
    char *pre = slurp(d1, "pretrain_train.txt", &np), *sft = slurp(d1, "sft_train.jsonl", &ns);
    char *rl = slurp(d1, "rl_train.jsonl", &nr);
    char *lp = pre, *ls = sft, *lr = rl;
    for (int i = 0; i < 400; i++) {
        char prompt[64], response[TASK_RESPONSE_MAX], answer[32];
        assert_int_equal(sscanf(ls, "{\"prompt\":\"%63[^\"]\",\"response\":\"%719[^\"]\"}", prompt, response), 2);
        assert_int_equal(sscanf(lr, "{\"prompt\":\"%*[^\"]\",\"answer\":\"%31[^\"]\"}", answer), 1);
        char line[1024];
        snprintf(line, sizeof line, "%s %s\n", prompt, response);
        assert_int_equal(strncmp(lp, line, strlen(line)), 0);
        assert_true(task_check_answer(response, strlen(response), answer));
        lp = strchr(lp, '\n') + 1;
        ls = strchr(ls, '\n') + 1;
        lr = strchr(lr, '\n') + 1;
    }
    free(pre);
    free(sft);
    free(rl);
    tu_rmdir(d1);
    tu_rmdir(d2);
    tu_rmdir(d3);
    tu_rmdir(d4);
}

static void difficulty_knob_sets_digit_counts(void **state) {
    (void)state;
    ts_rng rng;
    ts_rng_seed(&rng, 9, TS_STREAM_TEST);
    for (int d = 1; d <= 8; d++) {
        task_config upto = config(ALL_OPS, 1, d), exact = config(ALL_OPS, d, d);
        int hist[TASK_MAX_DIGITS + 1] = {0};
        for (int i = 0; i < 3000; i++) {
            task_problem p;
            task_sample(&rng, &upto, &p);
            assert_true(task_num_digits(p.a) <= d);
            hist[task_num_digits(p.a)]++;
            if (p.op == TASK_MUL) assert_true(p.b >= 2 && p.b <= 9);
            else assert_true(task_num_digits(p.b) <= d);
            task_sample(&rng, &exact, &p);
            assert_int_equal(task_num_digits(p.a), d);
            if (p.op != TASK_MUL) assert_int_equal(task_num_digits(p.b), d);
        }
        for (int k = 1; k <= d; k++) assert_true(hist[k] > 0); /* every length up to d occurs */
    }
    /* More digits: longer scratchpads. */
    task_problem small = {TASK_ADD, 12, 34}, big = {TASK_ADD, 123456, 654321};
    task_text ts, tb;
    task_render(&small, &ts);
    task_render(&big, &tb);
    assert_true(strlen(tb.scratchpad) > 2 * strlen(ts.scratchpad));
}

static void checker_accepts_right_and_rejects_wrong(void **state) {
    (void)state;
    const char *good = "<think>1+9=10 carry 1</think><answer>10</answer>";
    assert_true(task_check_format(good, strlen(good)));
    assert_true(task_check_answer(good, strlen(good), "10"));
    assert_false(task_check_answer(good, strlen(good), "11"));
    assert_false(task_check_answer(good, strlen(good), "1"));
    const char *spaced = "  <think> x </think>\n<answer> 10 </answer>\n";
    assert_true(task_check_format(spaced, strlen(spaced)));
    assert_true(task_check_answer(spaced, strlen(spaced), "10"));
    char got[16];
    assert_true(task_extract_answer(spaced, strlen(spaced), got, sizeof got));
    assert_string_equal(got, "10");
    const char *bad_format[] = {
        "<answer>10</answer>",                                    /* no think */
        "<think>x</think>",                                       /* no answer */
        "<answer>10</answer><think>x</think>",                    /* wrong order */
        "<think>x</think>words<answer>10</answer>",               /* text between blocks */
        "<think>x</think><answer>10</answer> and more",           /* text after */
        "hello <think>x</think><answer>10</answer>",              /* text before */
        "<think>x</think><answer>1</answer><answer>10</answer>",  /* two answers */
        "<think><think>x</think><answer>10</answer>",             /* repeated tag */
        "<think>x</think><answer>10",                             /* unclosed */
        "",
    };
    for (size_t i = 0; i < sizeof bad_format / sizeof bad_format[0]; i++)
        assert_false(task_check_format(bad_format[i], strlen(bad_format[i])));
    const char *wrong_answer[] = {
        "<think>x</think><answer>010</answer>",  /* leading zero */
        "<think>x</think><answer>10.0</answer>", /* not exact */
        "<think>x</think><answer>1 0</answer>",
        "<think>x</think><answer></answer>",
        "<think>x</think><answer>10",            /* no closing tag */
        "<think>x</think>10</answer>",           /* no opening tag */
        "the answer is 10",
    };
    for (size_t i = 0; i < sizeof wrong_answer / sizeof wrong_answer[0]; i++)
        assert_false(task_check_answer(wrong_answer[i], strlen(wrong_answer[i]), "10"));
    /* Bytes after a NUL are still looked at: the length is what counts. */
    const char nul[] = "<think>a\0b</think><answer>7</answer>";
    assert_true(task_check_format(nul, sizeof nul - 1));
    assert_true(task_check_answer(nul, sizeof nul - 1, "7"));
    assert_false(task_check_answer(nul, 8, "7"));
}

static void bad_configs_are_reported(void **state) {
    (void)state;
    unsigned ops = 0;
    assert_int_equal(task_parse_ops("add,mul", &ops), TS_OK);
    assert_int_equal(ops, TASK_OP_BIT(TASK_ADD) | TASK_OP_BIT(TASK_MUL));
    assert_int_equal(task_parse_ops("add,div", &ops), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "'div'"));
    assert_int_equal(task_parse_ops("", &ops), TS_ERR_ARG);
    task_config c = config(ALL_OPS, 1, 0);
    assert_int_equal(task_config_check(&c), TS_ERR_RANGE);
    c = config(ALL_OPS, 1, TASK_MAX_DIGITS + 1);
    assert_int_equal(task_config_check(&c), TS_ERR_RANGE);
    c = config(ALL_OPS, 3, 2);
    assert_int_equal(task_config_check(&c), TS_ERR_RANGE);
    c = config(0, 1, 2);
    assert_int_equal(task_config_check(&c), TS_ERR_RANGE);
    /* One-digit additions: 100 in all, so 1000 distinct test problems cannot exist. */
    c = config(TASK_OP_BIT(TASK_ADD), 1, 1);
    task_problem *p = malloc(1000 * sizeof *p);
    assert_int_equal(task_generate(&c, 1, TASK_TEST, 1000, p), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "distinct test problems"));
    free(p);
    char dir[64];
    tu_tmpdir(dir);
    char file[128];
    snprintf(file, sizeof file, "%s/afile", dir);
    FILE *f = fopen(file, "w");
    fclose(f);
    c = config(ALL_OPS, 1, 2);
    assert_int_equal(task_write_datasets(file, &c, 1, 10, 10, NULL), TS_ERR_IO); /* --out is a file */
    assert_non_null(strstr(ts_last_error(), "afile"));
    tu_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_examples_render_exactly),
        cmocka_unit_test(answers_match_c_arithmetic),
        cmocka_unit_test(train_and_test_never_overlap),
        cmocka_unit_test(generation_is_deterministic),
        cmocka_unit_test(dataset_files_same_seed_same_bytes),
        cmocka_unit_test(difficulty_knob_sets_digit_counts),
        cmocka_unit_test(checker_accepts_right_and_rejects_wrong),
        cmocka_unit_test(bad_configs_are_reported),
    };
    return cmocka_run_group_tests_name("ch01_tasks", tests, NULL, NULL);
}

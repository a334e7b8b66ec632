/* Chapter 1: the toy arithmetic tasks, their scratchpads, the split and the answer checker. */
#include "testutil.h"

#include <sys/stat.h>

#include <cJSON.h>

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

/* The six files of the world, in task_split order. */
static const char *const world_files[TASK_N_SPLITS] = {"pretrain_train.txt", "test.jsonl",     "pretrain_test.txt",
                                                       "sft_train.jsonl",    "sft_test.jsonl", "rl_train.jsonl"};

static int is_pretrain_file(int k) { return k == TASK_TRAIN || k == TASK_PRETRAIN_TEST; }

/* A problem as the test reads it back from a file: canonical (op, smaller, larger
 * for + and *), with the difficulty the file claims (-1 for pretraining text). */
typedef struct {
    char op;
    unsigned long long x, y;
} read_problem;

static read_problem canonical_read(char op, unsigned long long x, unsigned long long y) {
    read_problem r = {op, x, y};
    if ((op == '+' || op == '*') && x > y) {
        r.x = y;
        r.y = x;
    }
    return r;
}

static unsigned long long apply(char op, unsigned long long x, unsigned long long y) {
    if (op == '+') return x + y;
    if (op == '-') {
        assert_true(x >= y);
        return x - y;
    }
    return x * y;
}

/*
 * Read one line of pretraining text back without the generator's help: the
 * first two numbers are the operands, the last one the result; the operation
 * is the symbol if there is one, else the word (times/each, minus/left,
 * plus/more). The result must be what C computes.
 */
static read_problem read_web_line(const char *line, size_t len) {
    char buf[TASK_WEB_MAX];
    assert_true(len < sizeof buf);
    memcpy(buf, line, len);
    buf[len] = '\0';
    unsigned long long nums[256];
    int n = 0;
    for (const char *c = buf; *c;) {
        if (*c >= '0' && *c <= '9') {
            char *end;
            assert_true(n < 256);
            nums[n++] = strtoull(c, &end, 10);
            c = end;
        } else {
            c++;
        }
    }
    if (n < 3) fail_msg("pretraining line with fewer than 3 numbers: %s", buf);
    char op = strchr(buf, '*') || strstr(buf, " times ") || strstr(buf, " each")   ? '*'
              : strchr(buf, '-') || strstr(buf, " minus ") || strstr(buf, " left") ? '-'
              : strchr(buf, '+') || strstr(buf, " plus ") || strstr(buf, " more") ? '+'
                                                                                   : 0;
    if (!op) fail_msg("no operation found in: %s", buf);
    if (apply(op, nums[0], nums[1]) != nums[n - 1])
        fail_msg("wrong result in pretraining line: %s (%llu %c %llu = %llu)", buf, nums[0], op, nums[1],
                 apply(op, nums[0], nums[1]));
    return canonical_read(op, nums[0], nums[1]);
}

static const char *json_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v)) fail_msg("field \"%s\" missing or not a string", key);
    return v->valuestring;
}

/* One JSON line of sft/rl/test: the prompt parsed back, the answer and the
 * difficulty checked with C arithmetic; an SFT response checked step by step. */
static read_problem read_json_line(const char *line, size_t len, int with_response, int *difficulty) {
    cJSON *obj = cJSON_ParseWithLength(line, len);
    assert_non_null(obj);
    const char *prompt = json_string(obj, "prompt"), *answer = json_string(obj, "answer");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, "difficulty");
    assert_true(cJSON_IsNumber(d));
    assert_int_equal(cJSON_GetArraySize(obj), with_response ? 4 : 3); /* nothing else */
    unsigned long long x, y;
    char op;
    parse_prompt(prompt, &x, &op, &y);
    char want[32];
    snprintf(want, sizeof want, "%llu", apply(op, x, y));
    assert_string_equal(answer, want);
    unsigned long long longer = x > y ? x : y;
    int digits = 0;
    do digits++;
    while (longer /= 10);
    assert_int_equal(d->valueint, digits);
    *difficulty = d->valueint;
    if (with_response) {
        const char *r = json_string(obj, "response");
        assert_true(task_check_format(r, strlen(r)));
        assert_true(task_check_answer(r, strlen(r), want));
        assert_int_equal(strncmp(r, "<think>", 7), 0); /* no spaces around the tags */
        const char *end = strstr(r, "</think>");
        task_problem p = {op == '+' ? TASK_ADD : op == '-' ? TASK_SUB : TASK_MUL, x, y};
        task_text t;
        memset(&t, 0, sizeof t);
        assert_true((size_t)(end - r - 7) < sizeof t.scratchpad);
        memcpy(t.scratchpad, r + 7, (size_t)(end - r - 7));
        assert_true(strlen(want) < sizeof t.answer);
        memcpy(t.answer, want, strlen(want) + 1);
        check_scratchpad(&p, &t);
        char tail[64];
        snprintf(tail, sizeof tail, "</think><answer>%s</answer>", want);
        assert_string_equal(end, tail);
    }
    cJSON_Delete(obj);
    return canonical_read(op, x, y);
}

static int cmp_read(const void *pa, const void *pb) {
    const read_problem *a = pa, *b = pb;
    if (a->op != b->op) return a->op < b->op ? -1 : 1;
    if (a->x != b->x) return a->x < b->x ? -1 : 1;
    if (a->y != b->y) return a->y < b->y ? -1 : 1;
    return 0;
}

typedef struct {
    read_problem *probs[TASK_N_SPLITS];
    size_t n[TASK_N_SPLITS];
    size_t per_difficulty[TASK_N_SPLITS][TASK_MAX_DIGITS + 1];
    size_t tagged_lines;      /* pretrain_train.txt lines holding a think/answer tag or a chat token */
    size_t tagged_lines_test; /* the same in pretrain_test.txt */
} read_world;

/* Read every file of a world folder back, checking each line as it goes. */
static void read_world_files(const char *dir, read_world *rw) {
    memset(rw, 0, sizeof *rw);
    for (int k = 0; k < TASK_N_SPLITS; k++) {
        size_t len;
        char *text = slurp(dir, world_files[k], &len);
        size_t lines = 0;
        for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
        assert_true(len == 0 || text[len - 1] == '\n');
        rw->probs[k] = malloc((lines ? lines : 1) * sizeof(read_problem));
        const char *line = text;
        for (size_t i = 0; i < lines; i++) {
            const char *end = strchr(line, '\n');
            size_t n = (size_t)(end - line);
            if (is_pretrain_file(k)) {
                int tagged = 0;
                for (const char *const *tag = (const char *const[]){"<think>", "</think>", "<answer>", "</answer>", "<|", NULL};
                     *tag; tag++)
                    for (const char *c = line; c + strlen(*tag) <= end; c++)
                        if (memcmp(c, *tag, strlen(*tag)) == 0) tagged = 1;
                if (k == TASK_TRAIN) rw->tagged_lines += tagged;
                else rw->tagged_lines_test += tagged;
                rw->probs[k][i] = read_web_line(line, n);
            } else {
                int d;
                rw->probs[k][i] = read_json_line(line, n, k == TASK_SFT_TRAIN || k == TASK_SFT_TEST, &d);
                rw->per_difficulty[k][d]++;
            }
            line = end + 1;
        }
        rw->n[k] = lines;
        free(text);
    }
}

static void read_world_free(read_world *rw) {
    for (int k = 0; k < TASK_N_SPLITS; k++) free(rw->probs[k]);
}

/* No problem twice in a file, and no problem in two files (sorted merge). */
static void assert_disjoint(read_world *rw) {
    for (int k = 0; k < TASK_N_SPLITS; k++) {
        qsort(rw->probs[k], rw->n[k], sizeof(read_problem), cmp_read);
        for (size_t i = 1; i < rw->n[k]; i++)
            if (cmp_read(&rw->probs[k][i - 1], &rw->probs[k][i]) == 0)
                fail_msg("%s holds %llu%c%llu twice", world_files[k], rw->probs[k][i].x, rw->probs[k][i].op,
                         rw->probs[k][i].y);
    }
    for (int a = 0; a < TASK_N_SPLITS; a++)
        for (int b = a + 1; b < TASK_N_SPLITS; b++) {
            size_t i = 0, j = 0;
            while (i < rw->n[a] && j < rw->n[b]) {
                int c = cmp_read(&rw->probs[a][i], &rw->probs[b][j]);
                if (c == 0)
                    fail_msg("%llu%c%llu is in both %s and %s", rw->probs[a][i].x, rw->probs[a][i].op,
                             rw->probs[a][i].y, world_files[a], world_files[b]);
                if (c < 0) i++;
                else j++;
            }
        }
}

static void world_files_are_right_disjoint_and_big_enough(void **state) {
    (void)state;
    char dir[64];
    tu_tmpdir(dir);
    task_world w;
    task_world_default(&w);
    task_world_stats st;
    assert_int_equal(task_write_world(dir, &w, 1, &st), TS_OK);
    read_world rw;
    read_world_files(dir, &rw);
    /* sizes: what was asked for, and at least 1000 test problems per difficulty 2..5 */
    assert_int_equal(rw.n[TASK_TRAIN], 20000);
    assert_int_equal(rw.n[TASK_PRETRAIN_TEST], 1000);
    assert_int_equal(rw.n[TASK_SFT_TRAIN], 300);
    assert_int_equal(rw.n[TASK_SFT_TEST], 100);
    assert_int_equal(rw.n[TASK_RL_TRAIN], 4000);
    for (int d = 0; d <= TASK_MAX_DIGITS; d++) {
        int in_range = d >= 2 && d <= 5;
        assert_int_equal(rw.per_difficulty[TASK_TEST][d], in_range ? 1000 : 0);
        assert_int_equal(rw.per_difficulty[TASK_RL_TRAIN][d], in_range ? 1000 : 0);
        assert_int_equal(rw.per_difficulty[TASK_SFT_TRAIN][d], in_range ? 75 : 0);
        assert_int_equal(rw.per_difficulty[TASK_SFT_TEST][d], in_range ? 25 : 0);
        for (int k = 0; k < TASK_N_SPLITS; k++)
            if (!is_pretrain_file(k)) assert_int_equal(st.per_difficulty[k][d], rw.per_difficulty[k][d]);
    }
    for (int k = 0; k < TASK_N_SPLITS; k++) assert_int_equal(st.lines[k], rw.n[k]);
    /* the pretraining text: no think/answer tag, no chat token; every plain form present */
    assert_int_equal(rw.tagged_lines, 0);
    assert_int_equal(rw.tagged_lines_test, 0);
    assert_int_equal(st.per_form[TASK_FORM_TAGGED], 0);
    for (int f = 0; f < TASK_FORM_TAGGED; f++) assert_true(st.per_form[f] > 1000);
    for (int d = 1; d <= 5; d++) assert_true(st.per_difficulty[TASK_TRAIN][d] > 0);
    assert_disjoint(&rw);
    read_world_free(&rw);

    /* the think/answer format, when asked for, shows up in about that share of lines */
    w.form_weight[TASK_FORM_TAGGED] = 5; /* of 105 */
    w.n_rl_train = 40;
    assert_int_equal(task_write_world(dir, &w, 1, &st), TS_OK);
    read_world_files(dir, &rw);
    assert_true(rw.tagged_lines > 20000 * 3 / 105 && rw.tagged_lines < 20000 * 7 / 105);
    assert_int_equal(rw.tagged_lines, st.per_form[TASK_FORM_TAGGED]);
    assert_disjoint(&rw);
    read_world_free(&rw);
    tu_rmdir(dir);
}

static void world_same_seed_same_bytes(void **state) {
    (void)state;
    char d1[64], d2[64], d3[64], d4[64];
    tu_tmpdir(d1);
    tu_tmpdir(d2);
    tu_tmpdir(d3);
    tu_tmpdir(d4);
    task_world w;
    task_world_default(&w);
    w.n_pretrain_train = 3000;
    assert_int_equal(task_write_world(d1, &w, 11, NULL), TS_OK);
    assert_int_equal(task_write_world(d2, &w, 11, NULL), TS_OK);
    assert_int_equal(task_write_world(d3, &w, 12, NULL), TS_OK);
    task_world other = w; /* other sizes: the test set must not move */
    other.n_pretrain_train = 500;
    other.n_rl_train = 100;
    other.n_sft_train = 20;
    assert_int_equal(task_write_world(d4, &other, 11, NULL), TS_OK);
    for (int k = 0; k < TASK_N_SPLITS; k++) {
        size_t n1, n2, n3, n4;
        char *f1 = slurp(d1, world_files[k], &n1), *f2 = slurp(d2, world_files[k], &n2);
        char *f3 = slurp(d3, world_files[k], &n3), *f4 = slurp(d4, world_files[k], &n4);
        assert_int_equal(n1, n2);
        assert_memory_equal(f1, f2, n1);
        assert_true(n1 != n3 || memcmp(f1, f3, n1) != 0);
        if (k == TASK_TEST || k == TASK_PRETRAIN_TEST || k == TASK_SFT_TEST) {
            assert_int_equal(n1, n4);
            assert_memory_equal(f1, f4, n1);
        }
        free(f1);
        free(f2);
        free(f3);
        free(f4);
    }
    tu_rmdir(d1);
    tu_rmdir(d2);
    tu_rmdir(d3);
    tu_rmdir(d4);
}

static void every_split_is_its_own(void **state) {
    (void)state;
    /* Two digits, every split drawn from: a small space, so a broken split shows up as overlap. */
    enum { N = 150 };
    read_world rw;
    memset(&rw, 0, sizeof rw);
    unsigned ops = TASK_OP_BIT(TASK_ADD) | TASK_OP_BIT(TASK_SUB) | TASK_OP_BIT(TASK_MUL);
    int hist[TASK_N_SPLITS] = {0};
    for (int k = 0; k < TASK_N_SPLITS; k++) {
        task_problem p[N];
        assert_int_equal(task_generate_difficulty(ops, 2, 5, (task_split)k, N, p), TS_OK);
        rw.probs[k] = malloc(N * sizeof(read_problem));
        rw.n[k] = N;
        for (int i = 0; i < N; i++) {
            assert_int_equal(task_split_of(&p[i]), k);
            assert_int_equal(task_difficulty(&p[i]), 2);
            rw.probs[k][i] = canonical_read(task_op_symbol(p[i].op), p[i].a, p[i].b);
        }
    }
    assert_disjoint(&rw);
    read_world_free(&rw);
    /* The shares of the splits over many problems: the table in tasks.h. */
    ts_rng rng;
    ts_rng_seed(&rng, 3, TS_STREAM_TEST);
    task_config wide = config(ops, 1, 9);
    int N2 = 200000;
    for (int i = 0; i < N2; i++) {
        task_problem p;
        task_sample(&rng, &wide, &p);
        hist[task_split_of(&p)]++;
    }
    const double want[TASK_N_SPLITS] = {0.5, 0.2, 0.05, 0.04, 0.02, 0.19};
    for (int k = 0; k < TASK_N_SPLITS; k++) assert_true(fabs((double)hist[k] / N2 - want[k]) < 0.005);
}

static void difficulty_sets_the_longer_operand(void **state) {
    (void)state;
    ts_rng rng;
    ts_rng_seed(&rng, 21, TS_STREAM_TEST);
    unsigned ops = TASK_OP_BIT(TASK_ADD) | TASK_OP_BIT(TASK_SUB) | TASK_OP_BIT(TASK_MUL);
    for (int d = 1; d <= 9; d++) {
        int add_longer_first = 0, add_longer_second = 0, short_other = 0;
        for (int i = 0; i < 2000; i++) {
            task_problem p;
            task_sample_difficulty(&rng, ops, d, &p);
            assert_int_equal(task_difficulty(&p), d);
            if (p.op == TASK_MUL) {
                assert_int_equal(task_num_digits(p.a), d);
                assert_true(p.b >= 2 && p.b <= 9);
            } else {
                if (p.op == TASK_SUB) assert_true(p.a >= p.b);
                if (p.op == TASK_ADD && task_num_digits(p.a) > task_num_digits(p.b)) add_longer_first++;
                if (p.op == TASK_ADD && task_num_digits(p.a) < task_num_digits(p.b)) add_longer_second++;
                short_other += task_num_digits(p.a < p.b ? p.a : p.b) < d;
            }
        }
        if (d > 1) assert_true(add_longer_first > 50 && add_longer_second > 50 && short_other > 200);
    }
}

static void web_forms_render_exactly(void **state) {
    (void)state;
    struct {
        task_problem p;
        task_form form;
        unsigned variant;
        const char *text;
    } cases[] = {
        {{TASK_ADD, 347, 28}, TASK_FORM_EQUATION, 0, "347+28=375"},
        {{TASK_SUB, 347, 28}, TASK_FORM_QUESTION, 0, "What is 347-28? 319"},
        {{TASK_ADD, 347, 28}, TASK_FORM_NOTES, 0,
         "347+28: 7+8=15 carry 1 ; 4+2+1=7 carry 0 ; 3+0=3 carry 0 ; so 347+28=375"},
        {{TASK_ADD, 987, 28}, TASK_FORM_PROSE, 0,
         "To work out 987 plus 28, start with the ones: 7 plus 8 is 15, write 5 and carry 1. The tens: 8 plus 2 "
         "plus the carried 1 is 11, write 1 and carry 1. The hundreds: 9 plus 0 plus the carried 1 is 10, write 0 "
         "and carry 1. The carry 1 goes in front. So the sum is 1015."},
        {{TASK_SUB, 302, 28}, TASK_FORM_PROSE, 0,
         "To work out 302 minus 28, start with the ones: 2 is too small, so borrow ten: 12 minus 8 is 4, write it. "
         "The tens: 0 is too small, so borrow ten: 10 minus 2 minus the borrowed 1 is 7, write it. The hundreds: 3 "
         "minus 0 minus the borrowed 1 is 2, write it. So the difference is 274."},
        {{TASK_MUL, 347, 8}, TASK_FORM_PROSE, 0,
         "To work out 347 times 8, start with the ones: 7 times 8 is 56, write 6 and carry 5. The tens: 4 times 8 "
         "plus the carried 5 is 37, write 7 and carry 3. The hundreds: 3 times 8 plus the carried 3 is 27, write 7 "
         "and carry 2. The carry 2 goes in front. So the product is 2776."},
        {{TASK_ADD, 347, 28}, TASK_FORM_STORY, 0, "A shop had 347 apples and got 28 more, so it had 375."},
        {{TASK_SUB, 347, 28}, TASK_FORM_STORY, 1 + 4 * 3, "Mia had 347 coins and spent 28, so 319 were left."},
        {{TASK_MUL, 347, 8}, TASK_FORM_STORY, 0, "There are 8 boxes with 347 nails each, 2776 nails in all."},
        {{TASK_ADD, 12, 7}, TASK_FORM_TAGGED, 0,
         "What is 12+7? <think>2+7=9 carry 0 ; 1+0=1 carry 0</think><answer>19</answer>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[TASK_WEB_MAX];
        size_t n = task_render_web(&cases[i].p, cases[i].form, cases[i].variant, buf, sizeof buf);
        assert_string_equal(buf, cases[i].text);
        assert_int_equal(n, strlen(cases[i].text));
        read_problem r = read_web_line(buf, n);
        read_problem want = canonical_read(task_op_symbol(cases[i].p.op), cases[i].p.a, cases[i].p.b);
        assert_int_equal(cmp_read(&r, &want), 0);
    }
    /* The longest problems fit, in every form and story. */
    task_problem big[] = {{TASK_ADD, 999999999999999999ULL, 999999999999999999ULL},
                          {TASK_SUB, 100000000000000000ULL, 99999999999999999ULL},
                          {TASK_MUL, 999999999999999999ULL, 9}};
    for (size_t i = 0; i < 3; i++)
        for (int f = 0; f < TASK_N_FORMS; f++)
            for (unsigned v = 0; v < 32; v++) {
                char buf[TASK_WEB_MAX];
                size_t n = task_render_web(&big[i], (task_form)f, v, buf, sizeof buf);
                assert_true(n + 1 < sizeof buf);
                read_problem r = read_web_line(buf, n);
                read_problem want = canonical_read(task_op_symbol(big[i].op), big[i].a, big[i].b);
                assert_int_equal(cmp_read(&r, &want), 0);
            }
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
    task_world w;
    task_world_default(&w);
    assert_int_equal(task_write_world(file, &w, 1, NULL), TS_ERR_IO); /* --out is a file */
    assert_non_null(strstr(ts_last_error(), "afile"));
    w.min_digits = 1; /* one-digit problems: far fewer than 1000 test problems exist */
    assert_int_equal(task_write_world(dir, &w, 1, NULL), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "1-digit test problems"));
    task_world_default(&w);
    w.max_digits = 19;
    assert_int_equal(task_world_check(&w), TS_ERR_RANGE);
    task_world_default(&w);
    w.form_weight[TASK_FORM_PROSE] = -1;
    assert_int_equal(task_world_check(&w), TS_ERR_RANGE);
    tu_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_examples_render_exactly),
        cmocka_unit_test(answers_match_c_arithmetic),
        cmocka_unit_test(train_and_test_never_overlap),
        cmocka_unit_test(generation_is_deterministic),
        cmocka_unit_test(world_files_are_right_disjoint_and_big_enough),
        cmocka_unit_test(world_same_seed_same_bytes),
        cmocka_unit_test(every_split_is_its_own),
        cmocka_unit_test(difficulty_sets_the_longer_operand),
        cmocka_unit_test(web_forms_render_exactly),
        cmocka_unit_test(difficulty_knob_sets_digit_counts),
        cmocka_unit_test(checker_accepts_right_and_rejects_wrong),
        cmocka_unit_test(bad_configs_are_reported),
    };
    return cmocka_run_group_tests_name("ch01_tasks", tests, NULL, NULL);
}

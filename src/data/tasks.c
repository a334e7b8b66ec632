/**
 * @file tasks.c
 * @brief Arithmetic problems, their scratchpads, the train/test split and the
 *        answer checker used by the GRPO rewards. See tasks.h for the formats.
 */
#include "data/tasks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "io/fileio.h"

/* ---- small helpers ------------------------------------------------------ */

static const uint64_t pow10_table[20] = {1ULL,
                                         10ULL,
                                         100ULL,
                                         1000ULL,
                                         10000ULL,
                                         100000ULL,
                                         1000000ULL,
                                         10000000ULL,
                                         100000000ULL,
                                         1000000000ULL,
                                         10000000000ULL,
                                         100000000000ULL,
                                         1000000000000ULL,
                                         10000000000000ULL,
                                         100000000000000ULL,
                                         1000000000000000ULL,
                                         10000000000000000ULL,
                                         100000000000000000ULL,
                                         1000000000000000000ULL,
                                         10000000000000000000ULL};

/* Bounded appender: text past the end of the buffer is dropped (the buffers
 * in task_text are sized so that never happens for TASK_MAX_DIGITS). */
typedef struct {
    char *buf;
    size_t cap, len;
} text_out;

static void out_printf(text_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(text_out *o, const char *fmt, ...) {
    if (o->len + 1 >= o->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    o->len += (size_t)n;
    if (o->len >= o->cap) o->len = o->cap - 1;
}

/* The splitmix64 finaliser: a fixed, well-mixing 64-bit hash step. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- configuration ------------------------------------------------------- */

void task_config_default(task_config *cfg) {
    cfg->ops = TASK_OP_BIT(TASK_ADD) | TASK_OP_BIT(TASK_SUB);
    cfg->min_digits = 1;
    cfg->max_digits = 3;
}

ts_status task_config_check(const task_config *cfg) {
    if (cfg->ops == 0 || (cfg->ops & ~((1u << TASK_N_OPS) - 1u)))
        return ts_fail(TS_ERR_RANGE, "task config: ops must name at least one of add, sub, mul");
    if (cfg->max_digits < 1 || cfg->max_digits > TASK_MAX_DIGITS)
        return ts_fail(TS_ERR_RANGE, "task config: digits must be between 1 and %d, got %d", TASK_MAX_DIGITS,
                       cfg->max_digits);
    if (cfg->min_digits < 1 || cfg->min_digits > cfg->max_digits)
        return ts_fail(TS_ERR_RANGE, "task config: min digits must be between 1 and digits (%d), got %d",
                       cfg->max_digits, cfg->min_digits);
    return TS_OK;
}

static const char *const op_names[TASK_N_OPS] = {"add", "sub", "mul"};
static const char op_symbols[TASK_N_OPS] = {'+', '-', '*'};

const char *task_op_name(task_op op) { return (unsigned)op < TASK_N_OPS ? op_names[op] : "?"; }
char task_op_symbol(task_op op) { return (unsigned)op < TASK_N_OPS ? op_symbols[op] : '?'; }

ts_status task_parse_ops(const char *list, unsigned *ops) {
    unsigned mask = 0;
    const char *p = list;
    while (1) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int found = -1;
        for (int k = 0; k < TASK_N_OPS; k++)
            if (strlen(op_names[k]) == len && strncmp(op_names[k], p, len) == 0) found = k;
        if (found < 0)
            return ts_fail(TS_ERR_ARG, "unknown operation '%.*s' in '%s' (expected a comma-separated list of add, sub, mul)",
                           (int)len, p, list);
        mask |= TASK_OP_BIT(found);
        if (!end) break;
        p = end + 1;
    }
    *ops = mask;
    return TS_OK;
}

/* ---- problems ------------------------------------------------------------ */

int task_num_digits(uint64_t x) {
    int n = 1;
    while (x >= 10) {
        x /= 10;
        n++;
    }
    return n;
}

uint64_t task_result(const task_problem *p) {
    switch (p->op) {
    case TASK_ADD: return p->a + p->b;
    case TASK_SUB: return p->a - p->b;
    case TASK_MUL: return p->a * p->b;
    default: return 0;
    }
}

task_problem task_canonical(const task_problem *p) {
    task_problem c = *p;
    if ((p->op == TASK_ADD || p->op == TASK_MUL) && c.a > c.b) {
        c.a = p->b;
        c.b = p->a;
    }
    return c;
}

//! [task-split]
/* The split is decided by a hash of the canonical problem and nothing else:
 * no seed, no position in a file. "12+7" and "7+12" are one problem, so both
 * land on the same side. */
uint64_t task_hash(const task_problem *p) {
    task_problem c = task_canonical(p);
    uint64_t h = mix64(0x7461736b73ULL ^ (uint64_t)c.op); /* "tasks" */
    h = mix64(h ^ c.a);
    h = mix64(h ^ (c.b + 0x9e3779b97f4a7c15ULL));
    return h;
}

int task_is_test(const task_problem *p) { return task_hash(p) % 1000 < TASK_TEST_PERMILLE; }
//! [task-split]

//! [task-sample]
/* A number with a digit count uniform in [lo, hi], then uniform among the
 * numbers with exactly that many digits (0..9 for one digit). */
static uint64_t sample_operand(ts_rng *rng, int lo, int hi) {
    int digits = lo + (int)ts_rng_below(rng, (uint64_t)(hi - lo + 1));
    uint64_t first = digits == 1 ? 0 : pow10_table[digits - 1];
    return first + ts_rng_below(rng, pow10_table[digits] - first);
}

void task_sample(ts_rng *rng, const task_config *cfg, task_problem *p) {
    int enabled[TASK_N_OPS], n_enabled = 0;
    for (int k = 0; k < TASK_N_OPS; k++)
        if (cfg->ops & TASK_OP_BIT(k)) enabled[n_enabled++] = k;
    p->op = (task_op)enabled[ts_rng_below(rng, (uint64_t)n_enabled)];
    p->a = sample_operand(rng, cfg->min_digits, cfg->max_digits);
    if (p->op == TASK_MUL) {
        p->b = 2 + ts_rng_below(rng, 8); /* one-digit multiplier 2..9 */
    } else {
        p->b = sample_operand(rng, cfg->min_digits, cfg->max_digits);
        if (p->op == TASK_SUB && p->b > p->a) { /* keep results non-negative */
            uint64_t t = p->a;
            p->a = p->b;
            p->b = t;
        }
    }
}
//! [task-sample]

/* Open-addressing set of problems, to keep each split free of duplicates. */
typedef struct {
    task_problem *slots;
    unsigned char *used;
    size_t cap;
} problem_set;

static int problem_set_insert(problem_set *s, const task_problem *p) {
    uint64_t h = mix64(p->a * 31 + p->b * 0x100000001b3ULL + (uint64_t)p->op);
    size_t i = (size_t)(h & (s->cap - 1));
    while (s->used[i]) {
        const task_problem *q = &s->slots[i];
        if (q->op == p->op && q->a == p->a && q->b == p->b) return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->used[i] = 1;
    s->slots[i] = *p;
    return 1;
}

ts_status task_generate(const task_config *cfg, uint64_t seed, task_split split, size_t n, task_problem *out) {
    ts_status st = task_config_check(cfg);
    if (st) return st;
    if (n == 0) return TS_OK;
    problem_set set = {0};
    set.cap = 16;
    while (set.cap < 2 * n) set.cap *= 2;
    set.slots = ts_malloc(set.cap * sizeof *set.slots, "problem set");
    set.used = ts_calloc(set.cap, 1, "problem set");
    if (!set.slots || !set.used) {
        free(set.slots);
        free(set.used);
        return TS_ERR_NOMEM;
    }
    /* Separate sub-streams per split: the test set does not depend on n_train. */
    ts_rng rng;
    ts_rng_seed(&rng, seed ^ (0x5eed5eed5eedULL * (uint64_t)(split + 1)), TS_STREAM_DATA);
    size_t have = 0, draws = 0, max_draws = 1000000 + 200 * n;
    while (have < n && draws < max_draws) {
        task_problem p;
        task_sample(&rng, cfg, &p);
        draws++;
        if (task_is_test(&p) != (split == TASK_TEST)) continue;
        if (!problem_set_insert(&set, &p)) continue;
        out[have++] = p;
    }
    free(set.slots);
    free(set.used);
    if (have < n)
        return ts_fail(TS_ERR_RANGE,
                       "only %zu distinct %s problems found in %zu draws, %zu were asked for "
                       "(allow more digits or operations, or ask for fewer)",
                       have, split == TASK_TEST ? "test" : "train", draws, n);
    return TS_OK;
}

/* ---- scratchpads ----------------------------------------------------------- */

//! [task-scratchpad]
/* Column addition, least-significant digit first: "1+9=10 carry 1 ; 2+7+1=10 carry 1".
 * A step needs only its column's two digits and the carry of the step before. */
static void scratch_add(uint64_t a, uint64_t b, text_out *o) {
    int columns = task_num_digits(a > b ? a : b);
    int carry = 0;
    for (int col = 0; col < columns; col++, a /= 10, b /= 10) {
        int x = (int)(a % 10), y = (int)(b % 10), sum = x + y + carry;
        out_printf(o, "%s%d+%d", col ? " ; " : "", x, y);
        if (carry) out_printf(o, "+%d", carry);
        carry = sum / 10;
        out_printf(o, "=%d carry %d", sum, carry);
    }
}

/* Column subtraction (a >= b): "11-9=2 borrow 1 ; 12-7-1=4 borrow 1".
 * When the top digit is too small we borrow: write it as 1x (x+10) and pass
 * a borrow of 1 to the next column. */
static void scratch_sub(uint64_t a, uint64_t b, text_out *o) {
    int columns = task_num_digits(a);
    int borrow = 0;
    for (int col = 0; col < columns; col++, a /= 10, b /= 10) {
        int x = (int)(a % 10), y = (int)(b % 10);
        int next_borrow = x < y + borrow;
        out_printf(o, "%s%s%d-%d", col ? " ; " : "", next_borrow ? "1" : "", x, y);
        if (borrow) out_printf(o, "-%d", borrow);
        out_printf(o, "=%d borrow %d", x + 10 * next_borrow - y - borrow, next_borrow);
        borrow = next_borrow;
    }
}

/* Multiplication by one digit m: "1*7=7 carry 0 ; 2*7=14 carry 1 ; 8*7+1=57 carry 5". */
static void scratch_mul(uint64_t a, uint64_t m, text_out *o) {
    int columns = task_num_digits(a);
    int carry = 0;
    for (int col = 0; col < columns; col++, a /= 10) {
        int x = (int)(a % 10), product = x * (int)m + carry;
        out_printf(o, "%s%d*%d", col ? " ; " : "", x, (int)m);
        if (carry) out_printf(o, "+%d", carry);
        carry = product / 10;
        out_printf(o, "=%d carry %d", product, carry);
    }
}
//! [task-scratchpad]

size_t task_answer(const task_problem *p, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%llu", (unsigned long long)task_result(p));
    return n < 0 ? 0 : (size_t)n;
}

//! [task-render]
void task_render(const task_problem *p, task_text *t) {
    snprintf(t->prompt, sizeof t->prompt, "What is %llu%c%llu?", (unsigned long long)p->a, task_op_symbol(p->op),
             (unsigned long long)p->b);
    text_out o = {t->scratchpad, sizeof t->scratchpad, 0};
    t->scratchpad[0] = '\0';
    switch (p->op) {
    case TASK_ADD: scratch_add(p->a, p->b, &o); break;
    case TASK_SUB: scratch_sub(p->a, p->b, &o); break;
    case TASK_MUL: scratch_mul(p->a, p->b, &o); break;
    default: break;
    }
    task_answer(p, t->answer, sizeof t->answer);
    /* The R1 response format: reasoning inside <think>, result inside <answer>. */
    snprintf(t->response, sizeof t->response, "<think>%s</think><answer>%s</answer>", t->scratchpad, t->answer);
}
//! [task-render]

/* ---- checking completions (GRPO rewards) ---------------------------------- */

static const char *find_bytes(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m > n) return NULL;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
}

static int count_bytes(const char *hay, size_t n, const char *needle) {
    int count = 0;
    size_t m = strlen(needle);
    for (const char *p = hay; (p = find_bytes(p, n - (size_t)(p - hay), needle)) != NULL; p += m) count++;
    return count;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static int only_space(const char *from, const char *to) {
    for (const char *c = from; c < to; c++)
        if (!is_space(*c)) return 0;
    return 1;
}

//! [task-check]
int task_check_format(const char *s, size_t n) {
    static const char *const tags[4] = {"<think>", "</think>", "<answer>", "</answer>"};
    const char *at[4];
    for (int k = 0; k < 4; k++) {
        if (count_bytes(s, n, tags[k]) != 1) return 0; /* each tag exactly once */
        at[k] = find_bytes(s, n, tags[k]);
        if (k > 0 && at[k] < at[k - 1]) return 0; /* in order */
    }
    return only_space(s, at[0])                        /* nothing before <think> */
           && only_space(at[1] + strlen(tags[1]), at[2]) /* only space between the blocks */
           && only_space(at[3] + strlen(tags[3]), s + n); /* nothing after </answer> */
}

int task_extract_answer(const char *s, size_t n, char *out, size_t cap) {
    const char *open = find_bytes(s, n, "<answer>");
    if (!open) return 0;
    const char *from = open + strlen("<answer>");
    const char *to = find_bytes(from, n - (size_t)(from - s), "</answer>");
    if (!to) return 0;
    while (from < to && is_space(*from)) from++;
    while (to > from && is_space(to[-1])) to--;
    size_t len = (size_t)(to - from);
    if (len + 1 > cap || memchr(from, '\0', len)) return 0;
    memcpy(out, from, len);
    out[len] = '\0';
    return 1;
}

int task_check_answer(const char *s, size_t n, const char *reference) {
    char got[64];
    return task_extract_answer(s, n, got, sizeof got) && strcmp(got, reference) == 0;
}
//! [task-check]

/* ---- the data files --------------------------------------------------------- */

static ts_status write_json_line(FILE *f, const char *k1, const char *v1, const char *k2, const char *v2) {
    cJSON *obj = cJSON_CreateObject();
    if (!obj || !cJSON_AddStringToObject(obj, k1, v1) || !cJSON_AddStringToObject(obj, k2, v2)) {
        cJSON_Delete(obj);
        return ts_fail(TS_ERR_NOMEM, "out of memory building a JSON line");
    }
    char *line = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!line) return ts_fail(TS_ERR_NOMEM, "out of memory printing a JSON line");
    fputs(line, f);
    fputc('\n', f);
    cJSON_free(line);
    return TS_OK;
}

static ts_status write_split(const char *dir, const char *split_name, const task_problem *probs, size_t n,
                             size_t *pretrain_bytes) {
    static const char *const kinds[3] = {"pretrain_%s.txt", "sft_%s.jsonl", "rl_%s.jsonl"};
    ts_atomic_file files[3];
    int opened = 0;
    ts_status st = TS_OK;
    for (; opened < 3; opened++) {
        char name[64], path[4096];
        snprintf(name, sizeof name, kinds[opened], split_name);
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
            st = ts_fail(TS_ERR_ARG, "%s: path too long", dir);
            break;
        }
        st = ts_atomic_open(&files[opened], path);
        if (st) break;
    }
    for (size_t i = 0; i < n && !st; i++) {
        task_text t;
        task_render(&probs[i], &t);
        fprintf(files[0].f, "%s %s\n", t.prompt, t.response);
        st = write_json_line(files[1].f, "prompt", t.prompt, "response", t.response);
        if (!st) st = write_json_line(files[2].f, "prompt", t.prompt, "answer", t.answer);
    }
    if (!st && pretrain_bytes) {
        long pos = ftell(files[0].f);
        *pretrain_bytes = pos > 0 ? (size_t)pos : 0;
    }
    for (int k = 0; k < opened; k++) {
        if (st) {
            ts_atomic_abort(&files[k]);
        } else {
            st = ts_atomic_commit(&files[k]);
            if (st)
                for (int j = k + 1; j < opened; j++) ts_atomic_abort(&files[j]);
            if (st) break;
        }
    }
    return st;
}

ts_status task_write_datasets(const char *dir, const task_config *cfg, uint64_t seed, size_t n_train,
                              size_t n_test, task_dataset_stats *stats) {
    ts_status st = task_config_check(cfg);
    if (st) return st;
    if ((st = ts_mkdir_p(dir))) return st;
    task_problem *train = ts_malloc((n_train ? n_train : 1) * sizeof *train, "training problems");
    task_problem *test = ts_malloc((n_test ? n_test : 1) * sizeof *test, "test problems");
    if (!train || !test) st = TS_ERR_NOMEM;
    if (!st) st = task_generate(cfg, seed, TASK_TRAIN, n_train, train);
    if (!st) st = task_generate(cfg, seed, TASK_TEST, n_test, test);
    size_t bytes = 0;
    if (!st) st = write_split(dir, "train", train, n_train, &bytes);
    if (!st) st = write_split(dir, "test", test, n_test, NULL);
    if (!st && stats) {
        memset(stats, 0, sizeof *stats);
        stats->n_train = n_train;
        stats->n_test = n_test;
        stats->bytes_pretrain_train = bytes;
        for (size_t i = 0; i < n_train; i++) stats->n_per_op[train[i].op]++;
    }
    free(train);
    free(test);
    return st;
}

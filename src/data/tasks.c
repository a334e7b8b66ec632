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
/* Which file a problem may appear in is decided by a hash of the canonical
 * problem and nothing else: no seed, no position in a file. "12+7" and "7+12"
 * are one problem, so both land on the same side. Each split owns a range of
 * hash % 1000 (tasks.h has the table), so no two files can share a problem. */
uint64_t task_hash(const task_problem *p) {
    task_problem c = task_canonical(p);
    uint64_t h = mix64(0x7461736b73ULL ^ (uint64_t)c.op); /* "tasks" */
    h = mix64(h ^ c.a);
    h = mix64(h ^ (c.b + 0x9e3779b97f4a7c15ULL));
    return h;
}

static const struct {
    int upto; /* hash % 1000 below this (and above the row before) */
    task_split split;
} split_table[TASK_N_SPLITS] = {
    {TASK_TEST_PERMILLE, TASK_TEST}, {250, TASK_PRETRAIN_TEST}, {290, TASK_SFT_TRAIN},
    {310, TASK_SFT_TEST},            {500, TASK_RL_TRAIN},      {1000, TASK_TRAIN},
};

task_split task_split_of(const task_problem *p) {
    int r = (int)(task_hash(p) % 1000);
    int k = 0;
    while (r >= split_table[k].upto) k++;
    return split_table[k].split;
}

int task_is_test(const task_problem *p) { return task_split_of(p) == TASK_TEST; }
//! [task-split]

const char *task_split_name(task_split split) {
    static const char *const names[TASK_N_SPLITS] = {"pretrain_train", "test",     "pretrain_test",
                                                     "sft_train",      "sft_test", "rl_train"};
    return (unsigned)split < TASK_N_SPLITS ? names[split] : "?";
}

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

int task_difficulty(const task_problem *p) { return task_num_digits(p->a > p->b ? p->a : p->b); }

//! [task-sample-difficulty]
/* Difficulty d: the longer operand has exactly d digits, the other one any
 * digit count up to d. Add's operands come in either order; sub puts the
 * larger first; mul multiplies a d-digit number by one digit 2..9. */
void task_sample_difficulty(ts_rng *rng, unsigned ops, int digits, task_problem *p) {
    int enabled[TASK_N_OPS], n_enabled = 0;
    for (int k = 0; k < TASK_N_OPS; k++)
        if (ops & TASK_OP_BIT(k)) enabled[n_enabled++] = k;
    p->op = (task_op)enabled[ts_rng_below(rng, (uint64_t)n_enabled)];
    uint64_t longer = sample_operand(rng, digits, digits);
    if (p->op == TASK_MUL) {
        p->a = longer;
        p->b = 2 + ts_rng_below(rng, 8);
        return;
    }
    uint64_t other = sample_operand(rng, 1, digits);
    int swap = p->op == TASK_SUB ? other > longer : (int)ts_rng_below(rng, 2);
    p->a = swap ? other : longer;
    p->b = swap ? longer : other;
}
//! [task-sample-difficulty]

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

/* How a generator draws one problem: from a task_config, or at one difficulty
 * (lo == hi), or at a difficulty uniform in lo..hi. */
typedef struct {
    const task_config *cfg; /* non-NULL: task_sample */
    unsigned ops;
    int lo, hi;
} sampler;

static void sampler_draw(const sampler *s, ts_rng *rng, task_problem *p) {
    if (s->cfg) {
        task_sample(rng, s->cfg, p);
        return;
    }
    int d = s->lo + (int)ts_rng_below(rng, (uint64_t)(s->hi - s->lo + 1));
    task_sample_difficulty(rng, s->ops, d, p);
}

/* n distinct problems of one split, drawn from rng. */
static ts_status generate(const sampler *smp, ts_rng *rng, task_split split, size_t n, task_problem *out) {
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
    size_t have = 0, draws = 0, max_draws = 1000000 + 200 * n;
    while (have < n && draws < max_draws) {
        task_problem p;
        sampler_draw(smp, rng, &p);
        draws++;
        if (task_split_of(&p) != split) continue;
        task_problem c = task_canonical(&p); /* 12+7 and 7+12 are one problem */
        if (!problem_set_insert(&set, &c)) continue;
        out[have++] = p;
    }
    free(set.slots);
    free(set.used);
    if (have < n) {
        char level[48] = "";
        if (!smp->cfg && smp->lo == smp->hi) snprintf(level, sizeof level, " %d-digit", smp->lo);
        return ts_fail(TS_ERR_RANGE,
                       "only %zu distinct%s %s problems found in %zu draws, %zu were asked for "
                       "(allow more digits or operations, or ask for fewer)",
                       have, level, split == TASK_TEST ? "test" : task_split_name(split), draws, n);
    }
    return TS_OK;
}

/* Separate sub-streams per split (and difficulty): the test set does not
 * depend on how many training problems are asked for. */
static void split_stream(ts_rng *rng, uint64_t seed, task_split split, int digits) {
    uint64_t sub = 0x5eed5eed5eedULL * (uint64_t)(split + 1);
    if (digits) sub = mix64(sub ^ (uint64_t)digits);
    ts_rng_seed(rng, seed ^ sub, TS_STREAM_DATA);
}

ts_status task_generate(const task_config *cfg, uint64_t seed, task_split split, size_t n, task_problem *out) {
    ts_status st = task_config_check(cfg);
    if (st) return st;
    sampler smp = {cfg, 0, 0, 0};
    ts_rng rng;
    split_stream(&rng, seed, split, 0);
    return generate(&smp, &rng, split, n, out);
}

ts_status task_generate_difficulty(unsigned ops, int digits, uint64_t seed, task_split split, size_t n,
                                   task_problem *out) {
    task_config cfg = {ops, digits, digits};
    ts_status st = task_config_check(&cfg);
    if (st) return st;
    sampler smp = {NULL, ops, digits, digits};
    ts_rng rng;
    split_stream(&rng, seed, split, digits);
    return generate(&smp, &rng, split, n, out);
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

/* ---- the pretraining text: the same problems in plain forms ------------------ */

static const char *const column_names[] = {"ones",          "tens",         "hundreds",
                                           "thousands",     "ten thousands", "hundred thousands",
                                           "millions",      "ten millions",  "hundred millions"};

static void prose_column(text_out *o, int col) {
    int n_named = (int)(sizeof column_names / sizeof column_names[0]);
    if (col == 0) out_printf(o, ", start with the ones: ");
    else if (col < n_named) out_printf(o, " The %s: ", column_names[col]);
    else out_printf(o, " The next column: ");
}

//! [task-prose]
/* The worked column steps of the scratchpad, in words: the same digits, the
 * same carries and borrows, the same order (least significant first). */
static void prose_add(uint64_t a, uint64_t b, text_out *o) {
    uint64_t r = a + b;
    out_printf(o, "To work out %llu plus %llu", (unsigned long long)a, (unsigned long long)b);
    int columns = task_num_digits(a > b ? a : b), carry = 0;
    for (int col = 0; col < columns; col++, a /= 10, b /= 10) {
        int x = (int)(a % 10), y = (int)(b % 10), sum = x + y + carry;
        prose_column(o, col);
        out_printf(o, "%d plus %d", x, y);
        if (carry) out_printf(o, " plus the carried %d", carry);
        carry = sum / 10;
        out_printf(o, " is %d, write %d", sum, sum % 10);
        if (carry) out_printf(o, " and carry %d", carry);
        out_printf(o, ".");
    }
    if (carry) out_printf(o, " The carry %d goes in front.", carry);
    out_printf(o, " So the sum is %llu.", (unsigned long long)r);
}

static void prose_sub(uint64_t a, uint64_t b, text_out *o) {
    uint64_t r = a - b;
    out_printf(o, "To work out %llu minus %llu", (unsigned long long)a, (unsigned long long)b);
    int columns = task_num_digits(a), borrow = 0;
    for (int col = 0; col < columns; col++, a /= 10, b /= 10) {
        int x = (int)(a % 10), y = (int)(b % 10), next_borrow = x < y + borrow;
        prose_column(o, col);
        if (next_borrow) out_printf(o, "%d is too small, so borrow ten: 1%d minus %d", x, x, y);
        else out_printf(o, "%d minus %d", x, y);
        if (borrow) out_printf(o, " minus the borrowed 1");
        out_printf(o, " is %d, write it.", x + 10 * next_borrow - y - borrow);
        borrow = next_borrow;
    }
    out_printf(o, " So the difference is %llu.", (unsigned long long)r);
}

static void prose_mul(uint64_t a, uint64_t m, text_out *o) {
    uint64_t r = a * m;
    out_printf(o, "To work out %llu times %llu", (unsigned long long)a, (unsigned long long)m);
    int columns = task_num_digits(a), carry = 0;
    for (int col = 0; col < columns; col++, a /= 10) {
        int x = (int)(a % 10), product = x * (int)m + carry;
        prose_column(o, col);
        out_printf(o, "%d times %d", x, (int)m);
        if (carry) out_printf(o, " plus the carried %d", carry);
        carry = product / 10;
        out_printf(o, " is %d, write %d", product, product % 10);
        if (carry) out_printf(o, " and carry %d", carry);
        out_printf(o, ".");
    }
    if (carry) out_printf(o, " The carry %d goes in front.", carry);
    out_printf(o, " So the product is %llu.", (unsigned long long)r);
}
//! [task-prose]

/* Short sentences with the numbers in them. {A} and {B} are the operands (for
 * mul {B} is the one-digit multiplier), {R} the result, {N} a name. Every
 * template names both operands before the result and ends on the result;
 * add's say "more", sub's "left", mul's "each". */
static const char *const stories[TASK_N_OPS][4] = {
    {"A shop had {A} apples and got {B} more, so it had {R}.",
     "{N} read {A} pages on Monday and {B} more on Tuesday, {R} pages in all.",
     "A train carried {A} people and {B} more got on, making {R}.",
     "There were {A} birds in a tree, {B} more came, and then there were {R}."},
    {"A farmer had {A} eggs and sold {B}, which left {R}.",
     "{N} had {A} coins and spent {B}, so {R} were left.",
     "A tank held {A} litres, {B} litres ran out, and {R} litres were left.",
     "Of {A} tickets, {B} were sold and {R} are left."},
    {"There are {B} boxes with {A} nails each, {R} nails in all.",
     "{N} bought {B} bags with {A} beads each, {R} beads in all.",
     "{B} trucks carry {A} bricks each, {R} bricks together.",
     "{B} shelves hold {A} books each, {R} books in all."},
};
static const char *const names[8] = {"Sam", "Ana", "Lee", "Mia", "Tom", "Ravi", "Zoe", "Ben"};

static void story(const task_problem *p, unsigned variant, text_out *o) {
    const char *t = stories[p->op][variant % 4];
    for (; *t; t++) {
        if (t[0] == '{' && t[1] && t[2] == '}') {
            switch (t[1]) {
            case 'A': out_printf(o, "%llu", (unsigned long long)p->a); break;
            case 'B': out_printf(o, "%llu", (unsigned long long)p->b); break;
            case 'R': out_printf(o, "%llu", (unsigned long long)task_result(p)); break;
            case 'N': out_printf(o, "%s", names[(variant / 4) % 8]); break;
            default: break;
            }
            t += 2;
        } else {
            out_printf(o, "%c", *t);
        }
    }
}

size_t task_render_web(const task_problem *p, task_form form, unsigned variant, char *buf, size_t cap) {
    text_out o = {buf, cap, 0};
    buf[0] = '\0';
    unsigned long long a = p->a, b = p->b, r = task_result(p);
    char op = task_op_symbol(p->op);
    switch (form) {
    case TASK_FORM_EQUATION: out_printf(&o, "%llu%c%llu=%llu", a, op, b, r); break;
    case TASK_FORM_QUESTION: out_printf(&o, "What is %llu%c%llu? %llu", a, op, b, r); break;
    case TASK_FORM_NOTES:
    case TASK_FORM_TAGGED: {
        task_text t;
        task_render(p, &t);
        if (form == TASK_FORM_TAGGED) out_printf(&o, "%s %s", t.prompt, t.response);
        else out_printf(&o, "%llu%c%llu: %s ; so %llu%c%llu=%llu", a, op, b, t.scratchpad, a, op, b, r);
        break;
    }
    case TASK_FORM_PROSE:
        if (p->op == TASK_ADD) prose_add(p->a, p->b, &o);
        else if (p->op == TASK_SUB) prose_sub(p->a, p->b, &o);
        else prose_mul(p->a, p->b, &o);
        break;
    case TASK_FORM_STORY: story(p, variant, &o); break;
    default: break;
    }
    return o.len;
}

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

/* ---- the world's files --------------------------------------------------------- */

void task_world_default(task_world *w) {
    memset(w, 0, sizeof *w);
    w->ops = TASK_OP_BIT(TASK_ADD) | TASK_OP_BIT(TASK_SUB);
    w->min_digits = 2;
    w->max_digits = 5;
    w->n_pretrain_train = 20000;
    w->n_pretrain_test = 1000;
    w->n_sft_train = 300;
    w->n_sft_test = 100;
    w->n_rl_train = 4000;
    w->n_test = 1000;
    static const int weights[TASK_N_FORMS] = {25, 10, 20, 25, 20, 0};
    memcpy(w->form_weight, weights, sizeof weights);
}

ts_status task_world_check(const task_world *w) {
    task_config c = {w->ops, w->min_digits, w->max_digits};
    ts_status st = task_config_check(&c);
    if (st) return st;
    int total = 0;
    for (int f = 0; f < TASK_N_FORMS; f++) {
        if (w->form_weight[f] < 0)
            return ts_fail(TS_ERR_RANGE, "task world: form weight %d is negative (%d)", f, w->form_weight[f]);
        total += w->form_weight[f];
    }
    if (total <= 0 && (w->n_pretrain_train || w->n_pretrain_test))
        return ts_fail(TS_ERR_RANGE, "task world: the pretraining forms' weights sum to 0");
    return TS_OK;
}

static ts_status json_line(FILE *f, const task_problem *p, int with_response) {
    task_text t;
    task_render(p, &t);
    cJSON *obj = cJSON_CreateObject();
    int ok = obj && cJSON_AddStringToObject(obj, "prompt", t.prompt) &&
             (!with_response || cJSON_AddStringToObject(obj, "response", t.response)) &&
             cJSON_AddStringToObject(obj, "answer", t.answer) &&
             cJSON_AddNumberToObject(obj, "difficulty", task_difficulty(p));
    char *line = ok ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!line) return ts_fail(TS_ERR_NOMEM, "out of memory building a JSON line");
    fputs(line, f);
    fputc('\n', f);
    cJSON_free(line);
    return TS_OK;
}

//! [task-world]
/* Pretraining text: problems of every difficulty 1..max_digits, each in one
 * form drawn by the weights from a stream of its own (so the problems do not
 * depend on the forms). */
static ts_status pretrain_problems(const task_world *w, uint64_t seed, task_split split, size_t n,
                                   task_problem *out) {
    sampler smp = {NULL, w->ops, 1, w->max_digits};
    ts_rng rng;
    split_stream(&rng, seed, split, 0);
    return generate(&smp, &rng, split, n, out);
}

/* SFT, RL and test: n problems spread evenly over min_digits..max_digits (the
 * easiest get the remainder), each difficulty from its own stream; written
 * either cycling through the difficulties or grouped by difficulty. */
static ts_status leveled_problems(const task_world *w, uint64_t seed, task_split split, size_t n, int grouped,
                                  task_problem *out) {
    int levels = w->max_digits - w->min_digits + 1;
    task_problem *by_level[TASK_MAX_DIGITS + 1] = {0};
    size_t count[TASK_MAX_DIGITS + 1] = {0};
    ts_status st = TS_OK;
    for (int l = 0; l < levels && !st; l++) {
        count[l] = n / (size_t)levels + ((size_t)l < n % (size_t)levels);
        by_level[l] = ts_malloc((count[l] ? count[l] : 1) * sizeof(task_problem), "problems");
        if (!by_level[l]) st = TS_ERR_NOMEM;
        else st = task_generate_difficulty(w->ops, w->min_digits + l, seed, split, count[l], by_level[l]);
    }
    size_t k = 0;
    if (!st && grouped) {
        for (int l = 0; l < levels; l++)
            for (size_t i = 0; i < count[l]; i++) out[k++] = by_level[l][i];
    } else if (!st) {
        for (size_t i = 0; k < n; i++)
            for (int l = 0; l < levels; l++)
                if (i < count[l]) out[k++] = by_level[l][i];
    }
    for (int l = 0; l < levels; l++) free(by_level[l]);
    return st;
}
//! [task-world]

static task_form draw_form(ts_rng *rng, const int *weight) {
    int total = 0;
    for (int f = 0; f < TASK_N_FORMS; f++) total += weight[f];
    int r = (int)ts_rng_below(rng, (uint64_t)total), f = 0;
    while (r >= weight[f]) r -= weight[f++];
    return (task_form)f;
}

ts_status task_write_world(const char *dir, const task_world *w, uint64_t seed, task_world_stats *stats) {
    ts_status st = task_world_check(w);
    if (st) return st;
    if ((st = ts_mkdir_p(dir))) return st;
    static const char *const file_names[TASK_N_SPLITS] = {"pretrain_train.txt", "test.jsonl",
                                                          "pretrain_test.txt",  "sft_train.jsonl",
                                                          "sft_test.jsonl",     "rl_train.jsonl"};
    const size_t n[TASK_N_SPLITS] = {w->n_pretrain_train, w->n_test * (size_t)(w->max_digits - w->min_digits + 1),
                                     w->n_pretrain_test,  w->n_sft_train,
                                     w->n_sft_test,       w->n_rl_train};
    task_problem *probs[TASK_N_SPLITS] = {0};
    for (int s = 0; s < TASK_N_SPLITS && !st; s++) {
        probs[s] = ts_malloc((n[s] ? n[s] : 1) * sizeof(task_problem), "problems");
        if (!probs[s]) st = TS_ERR_NOMEM;
        else if (s == TASK_TRAIN || s == TASK_PRETRAIN_TEST) st = pretrain_problems(w, seed, (task_split)s, n[s], probs[s]);
        else if (s == TASK_TEST) st = leveled_problems(w, seed, TASK_TEST, n[s], 1, probs[s]);
        else st = leveled_problems(w, seed, (task_split)s, n[s], 0, probs[s]);
    }
    if (stats) memset(stats, 0, sizeof *stats);
    ts_atomic_file files[TASK_N_SPLITS];
    int opened = 0;
    for (; opened < TASK_N_SPLITS && !st; opened++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, file_names[opened]) >= (int)sizeof path) {
            st = ts_fail(TS_ERR_ARG, "%s: path too long", dir);
            break;
        }
        st = ts_atomic_open(&files[opened], path);
        if (st) break;
    }
    char *line = st ? NULL : ts_malloc(TASK_WEB_MAX, "a line of text");
    if (!st && !line) st = TS_ERR_NOMEM;
    for (int s = 0; s < TASK_N_SPLITS && !st; s++) {
        ts_rng form_rng;
        ts_rng_seed(&form_rng, seed ^ (0xf0f3ULL * (uint64_t)(s + 1)), TS_STREAM_DATA);
        for (size_t i = 0; i < n[s] && !st; i++) {
            const task_problem *p = &probs[s][i];
            if (s == TASK_TRAIN || s == TASK_PRETRAIN_TEST) {
                task_form form = draw_form(&form_rng, w->form_weight);
                unsigned variant = (unsigned)ts_rng_below(&form_rng, 32);
                task_render_web(p, form, variant, line, TASK_WEB_MAX);
                fputs(line, files[s].f);
                fputc('\n', files[s].f);
                if (stats && s == TASK_TRAIN) stats->per_form[form]++;
            } else {
                st = json_line(files[s].f, p, s == TASK_SFT_TRAIN || s == TASK_SFT_TEST);
            }
            if (stats) stats->per_difficulty[s][task_difficulty(p)]++;
        }
        if (stats) {
            stats->lines[s] = n[s];
            long pos = ftell(files[s].f);
            stats->bytes[s] = pos > 0 ? (size_t)pos : 0;
        }
    }
    free(line);
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
    for (int s = 0; s < TASK_N_SPLITS; s++) free(probs[s]);
    return st;
}

/**
 * @file tasks.h
 * @brief The toy world: arithmetic problems with worked scratchpads (chapter 1).
 *
 * A problem is an operation and two non-negative operands. Each one renders as
 *
 *   - a prompt:      `What is 4821+379?`
 *   - a scratchpad:  one step per column, least-significant digit first, each
 *                    step computable from the two digits of its column and the
 *                    carry (or borrow) the step before it wrote:
 *                    `1+9=10 carry 1 ; 2+7+1=10 carry 1 ; 8+3+1=12 carry 1 ; 4+0+1=5 carry 0`
 *   - an answer:     the exact decimal result, no sign, no leading zeros: `5200`
 *   - a response in the DeepSeek-R1 format, with no spaces around the tags:
 *                    `<think>SCRATCHPAD</think><answer>ANSWER</answer>`
 *
 * Step formats, column by column (a_i, b_i the i-th digits from the right,
 * a missing digit is 0):
 *
 * | op  | step                      | meaning                                           |
 * |-----|---------------------------|---------------------------------------------------|
 * | add | `a+b[+1]=s carry c`       | "+1" when the previous step carried; c = s/10     |
 * | sub | `[1]a-b[-1]=d borrow c`   | "1" prefix (a+10) and c=1 when a-b-borrow < 0      |
 * | mul | `a*b[+k]=p carry c`       | b is the one-digit multiplier; "+k" the carry in  |
 *
 * The answer is read off the steps: the last digit of each step's result,
 * last step first, after the final carry (if not 0); leading zeros dropped.
 * Subtraction always has a >= b, so answers are never negative.
 *
 * Difficulty: each operand of add/sub has a digit count drawn uniformly from
 * [min_digits, max_digits] (default 1..max, "up to D digits"), then a value
 * uniformly among the numbers with exactly that many digits (0 counts as one
 * digit). For mul the first operand does the same and the multiplier is one
 * digit in 2..9. `--min-digits D --digits D` gives exactly D digits.
 *
 * Train/test split: a problem is in the test split iff a fixed hash of its
 * canonical form (operation, operands; a+b and b+a are one problem) falls in
 * the lowest TASK_TEST_PERMILLE per mille. The split is therefore a property of
 * the problem, independent of the seed and of the sampling order, and a test
 * problem can never leak into any training set made with any seed.
 */
#ifndef TS_TASKS_H
#define TS_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/rng.h"

/** Operations. */
typedef enum { TASK_ADD = 0, TASK_SUB = 1, TASK_MUL = 2, TASK_N_OPS = 3 } task_op;

/** Bit for an operation in task_config::ops. */
#define TASK_OP_BIT(op) (1u << (op))

/** Largest digit count: every operand and result then fits in 64 bits. */
#define TASK_MAX_DIGITS 18

/** Test split size in per mille of all problems (by hash). */
#define TASK_TEST_PERMILLE 100

/** Size of task_text::prompt (enough for TASK_MAX_DIGITS). */
#define TASK_PROMPT_MAX 64
/** Size of task_text::answer. */
#define TASK_ANSWER_MAX 24
/** Size of task_text::scratchpad. */
#define TASK_SCRATCH_MAX 640
/** Size of task_text::response. */
#define TASK_RESPONSE_MAX 720

/** Which split a problem belongs to. */
typedef enum { TASK_TRAIN = 0, TASK_TEST = 1 } task_split;

/** What to generate. */
typedef struct {
    unsigned ops;   /**< TASK_OP_BIT mask of enabled operations */
    int min_digits; /**< fewest digits per operand (1..max_digits) */
    int max_digits; /**< most digits per operand (1..TASK_MAX_DIGITS): the difficulty knob */
} task_config;

/** One problem: a op b. */
typedef struct {
    task_op op; /**< the operation */
    uint64_t a; /**< first operand (for sub, a >= b) */
    uint64_t b; /**< second operand (for mul, the one-digit multiplier) */
} task_problem;

/** A problem rendered as text (all NUL-terminated). */
typedef struct {
    char prompt[TASK_PROMPT_MAX];         /**< "What is 4821+379?" */
    char scratchpad[TASK_SCRATCH_MAX];    /**< "1+9=10 carry 1 ; ..." */
    char answer[TASK_ANSWER_MAX];         /**< "5200" */
    char response[TASK_RESPONSE_MAX];     /**< "<think>...</think><answer>5200</answer>" */
} task_text;

/** @brief Defaults: add and sub, up to 3 digits. */
void task_config_default(task_config *cfg);

/** @brief Check a config; TS_ERR_RANGE naming the field when it is out of range. */
ts_status task_config_check(const task_config *cfg);

/** @brief Parse "add,sub,mul" into an op mask; TS_ERR_ARG naming the bad entry. */
ts_status task_parse_ops(const char *list, unsigned *ops);

/** @brief Name of an op: "add", "sub" or "mul". */
const char *task_op_name(task_op op);
/** @brief Symbol of an op in prompts: '+', '-' or '*'. */
char task_op_symbol(task_op op);

/** @brief Number of decimal digits of x (1 for 0). */
int task_num_digits(uint64_t x);

/** @brief The exact result of the problem. */
uint64_t task_result(const task_problem *p);

/** @brief Canonical form: commutative operations with the operands sorted. */
task_problem task_canonical(const task_problem *p);

/** @brief Fixed 64-bit hash of the canonical problem (no seed involved). */
uint64_t task_hash(const task_problem *p);

/** @brief 1 if the problem belongs to the test split, 0 for train. */
int task_is_test(const task_problem *p);

/** @brief Draw one problem from the config's distribution (either split). */
void task_sample(ts_rng *rng, const task_config *cfg, task_problem *p);

/**
 * @brief Draw @p n distinct problems of one split, deterministically from @p seed.
 * Train and test use separate sub-streams of TS_STREAM_DATA, so the test set
 * does not change when the number of training problems does. Fails with
 * TS_ERR_RANGE when the config has too few distinct problems in that split.
 */
ts_status task_generate(const task_config *cfg, uint64_t seed, task_split split, size_t n, task_problem *out);

/** @brief Render prompt, scratchpad, answer and response. */
void task_render(const task_problem *p, task_text *t);

/** @brief Write the answer (decimal, no leading zeros) into buf; returns its length. */
size_t task_answer(const task_problem *p, char *buf, size_t cap);

/**
 * @brief Format check for rewards (R1's format reward): the completion is
 * `<think>…</think>`, optional whitespace, `<answer>…</answer>`, with
 * optional whitespace before and after, and each of the four tags exactly
 * once. Returns 1 or 0.
 */
int task_check_format(const char *completion, size_t len);

/**
 * @brief Copy the text between the first `<answer>` and the `</answer>` after
 * it into @p out, without surrounding whitespace. Returns 1 if both tags were
 * found (and the content fits), 0 otherwise.
 */
int task_extract_answer(const char *completion, size_t len, char *out, size_t cap);

/**
 * @brief Accuracy check for rewards: 1 iff the extracted answer equals
 * @p reference exactly (so "05200" or "5200.0" are wrong), 0 otherwise.
 */
int task_check_answer(const char *completion, size_t len, const char *reference);

/** Counts reported by task_write_datasets(). */
typedef struct {
    size_t n_train;               /**< training problems */
    size_t n_test;                /**< test problems */
    size_t bytes_pretrain_train;  /**< size of pretrain_train.txt */
    size_t n_per_op[TASK_N_OPS];  /**< training problems per operation */
} task_dataset_stats;

/**
 * @brief Write the three products for both splits into folder @p dir (created
 * if missing), each file atomically:
 *  - pretrain_{train,test}.txt: one problem per line, `PROMPT RESPONSE`
 *  - sft_{train,test}.jsonl: {"prompt": ..., "response": ...}
 *  - rl_{train,test}.jsonl: {"prompt": ..., "answer": ...}
 * The three products of a split hold the same problems in the same order.
 */
ts_status task_write_datasets(const char *dir, const task_config *cfg, uint64_t seed, size_t n_train,
                              size_t n_test, task_dataset_stats *stats);

#endif

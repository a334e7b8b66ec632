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
 * Difficulty of a problem: the number of digits of its longer operand
 * (task_difficulty). The world's SFT, RL and test files hold difficulties
 * --min-digits..--digits (default 2..5; one-digit problems are too few to
 * test on), the pretraining text 1..--digits.
 *
 * The split: which file a problem may appear in is decided by a fixed hash of
 * its canonical form (operation, operands; a+b and b+a are one problem),
 * per mille, and nothing else:
 *
 * | hash % 1000 | split              | file                  |
 * |-------------|--------------------|-----------------------|
 * |   0 .. 199  | TASK_TEST          | test.jsonl            |
 * | 200 .. 249  | TASK_PRETRAIN_TEST | pretrain_test.txt     |
 * | 250 .. 289  | TASK_SFT_TRAIN     | sft_train.jsonl       |
 * | 290 .. 309  | TASK_SFT_TEST      | sft_test.jsonl        |
 * | 310 .. 499  | TASK_RL_TRAIN      | rl_train.jsonl        |
 * | 500 .. 999  | TASK_TRAIN         | pretrain_train.txt    |
 *
 * So no two files can share a problem, whatever the seed or the sizes asked
 * for, and a test problem can never leak into any training set made with any
 * seed.
 *
 * The world (task_write_world) is DeepSeek-R1's story in miniature: the
 * pretraining text is "the web" of this world, arithmetic written out in
 * several plain forms (task_form: bare equations, questions with their answer,
 * worked column steps in the scratchpad's own notation, the same steps in
 * prose, numbers in short sentences) and, by default, never the
 * think/answer format nor a chat template; the SFT set is a small cold start
 * in the R1 format; the RL prompts carry only a checkable answer; the test
 * set is never trained on.
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
#define TASK_TEST_PERMILLE 200

/** Size of task_text::prompt (enough for TASK_MAX_DIGITS). */
#define TASK_PROMPT_MAX 64
/** Size of task_text::answer. */
#define TASK_ANSWER_MAX 24
/** Size of task_text::scratchpad. */
#define TASK_SCRATCH_MAX 640
/** Size of task_text::response. */
#define TASK_RESPONSE_MAX 720

/** Which split a problem belongs to (the table above): each split feeds one file. */
typedef enum {
    TASK_TRAIN = 0,         /**< pretraining text (pretrain_train.txt) */
    TASK_TEST = 1,          /**< the held-out test set (test.jsonl) */
    TASK_PRETRAIN_TEST = 2, /**< held-out pretraining text (pretrain_test.txt) */
    TASK_SFT_TRAIN = 3,     /**< cold-start SFT pairs (sft_train.jsonl) */
    TASK_SFT_TEST = 4,      /**< held-out SFT pairs (sft_test.jsonl) */
    TASK_RL_TRAIN = 5,      /**< RL prompts (rl_train.jsonl) */
    TASK_N_SPLITS = 6
} task_split;

/** Size of a pretraining line (task_render_web) for any TASK_MAX_DIGITS problem. */
#define TASK_WEB_MAX 2048

/** The plain-text forms a problem takes in the pretraining text (task_render_web). */
typedef enum {
    TASK_FORM_EQUATION = 0, /**< "347+28=375" */
    TASK_FORM_QUESTION = 1, /**< "What is 347+28? 375" */
    TASK_FORM_NOTES = 2,    /**< "347+28: 7+8=15 carry 1 ; 4+2+1=7 carry 0 ; 3+0=3 carry 0 ; so 347+28=375" */
    TASK_FORM_PROSE = 3,    /**< "To work out 347 plus 28, start with the ones: 7 plus 8 is 15, ..." */
    TASK_FORM_STORY = 4,    /**< "A shop had 347 apples and got 28 more, so it had 375." */
    TASK_FORM_TAGGED = 5,   /**< the question, a space, then the SFT response (the R1 think/answer format; off by default) */
    TASK_N_FORMS = 6
} task_form;

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

/** @brief The split the problem belongs to: the hash table in the file comment. */
task_split task_split_of(const task_problem *p);

/** @brief 1 if the problem belongs to the test split, 0 otherwise. */
int task_is_test(const task_problem *p);

/** @brief Name of a split: "pretrain_train", "test", "pretrain_test", "sft_train", "sft_test", "rl_train". */
const char *task_split_name(task_split split);

/** @brief Difficulty: the number of digits of the longer operand. */
int task_difficulty(const task_problem *p);

/**
 * @brief Draw one problem of difficulty @p digits from the enabled @p ops: the
 * longer operand has exactly that many digits, the other a digit count uniform
 * in 1..digits (mul: a one-digit multiplier 2..9); the order of add's operands
 * is random, sub puts the larger first.
 */
void task_sample_difficulty(ts_rng *rng, unsigned ops, int digits, task_problem *p);

/** @brief Draw one problem from the config's distribution (either split). */
void task_sample(ts_rng *rng, const task_config *cfg, task_problem *p);

/**
 * @brief Draw @p n distinct problems of one split, deterministically from @p seed.
 * Train and test use separate sub-streams of TS_STREAM_DATA, so the test set
 * does not change when the number of training problems does. Fails with
 * TS_ERR_RANGE when the config has too few distinct problems in that split.
 */
ts_status task_generate(const task_config *cfg, uint64_t seed, task_split split, size_t n, task_problem *out);

/**
 * @brief Like task_generate, at one difficulty (task_sample_difficulty), from
 * its own sub-stream of @p seed: the problems of one difficulty do not change
 * when another difficulty is asked for more or fewer.
 */
ts_status task_generate_difficulty(unsigned ops, int digits, uint64_t seed, task_split split, size_t n,
                                   task_problem *out);

/** @brief Render prompt, scratchpad, answer and response. */
void task_render(const task_problem *p, task_text *t);

/**
 * @brief One line of pretraining text (no newline) in @p form into @p buf
 * (TASK_WEB_MAX bytes are always enough); @p variant picks among the story
 * templates (any value; ignored by the other forms). Every form names the two
 * operands before the result, and the result is the last number on the line.
 * Returns the length.
 */
size_t task_render_web(const task_problem *p, task_form form, unsigned variant, char *buf, size_t cap);

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

/** What task_write_world() writes: sizes, difficulties and the share of each pretraining form. */
typedef struct {
    unsigned ops;               /**< TASK_OP_BIT mask of enabled operations */
    int min_digits;             /**< easiest difficulty in SFT, RL and test (>= 1) */
    int max_digits;             /**< hardest difficulty everywhere (<= TASK_MAX_DIGITS) */
    size_t n_pretrain_train;    /**< lines of pretraining text, one problem each */
    size_t n_pretrain_test;     /**< lines of held-out pretraining text */
    size_t n_sft_train;         /**< cold-start SFT pairs */
    size_t n_sft_test;          /**< held-out SFT pairs */
    size_t n_rl_train;          /**< RL prompts (spread evenly over the difficulties) */
    size_t n_test;              /**< test problems per difficulty */
    int form_weight[TASK_N_FORMS]; /**< relative share of each form in the pretraining text */
} task_world;

/** Counts reported by task_write_world(). */
typedef struct {
    size_t lines[TASK_N_SPLITS];                       /**< lines written per split's file */
    size_t bytes[TASK_N_SPLITS];                       /**< bytes written per split's file */
    size_t per_difficulty[TASK_N_SPLITS][TASK_MAX_DIGITS + 1]; /**< problems per split and difficulty */
    size_t per_form[TASK_N_FORMS];                     /**< pretrain_train.txt lines per form */
} task_world_stats;

/**
 * @brief Defaults: add and sub; difficulties 2..5; 20000 + 1000 lines of
 * pretraining text (forms equation 25, question 10, notes 20, prose 25,
 * story 20, tagged 0: the think/answer format is absent); 300 + 100 SFT
 * pairs; 4000 RL prompts; 1000 test problems per difficulty.
 */
void task_world_default(task_world *w);

/** @brief Check a world; TS_ERR_RANGE naming the field when it is out of range. */
ts_status task_world_check(const task_world *w);

/**
 * @brief Write the world into folder @p dir (created if missing), each file
 * atomically, deterministically from @p seed:
 *  - pretrain_{train,test}.txt: one problem per line in one of the forms
 *  - sft_{train,test}.jsonl: {"prompt", "response", "answer", "difficulty"}
 *  - rl_train.jsonl: {"prompt", "answer", "difficulty"}
 *  - test.jsonl: {"prompt", "answer", "difficulty"}, grouped by difficulty, easiest first
 * Prompts are the raw question (`What is 347+28?`); templates are the SFT
 * code's business. SFT and RL files cycle through the difficulties.
 */
ts_status task_write_world(const char *dir, const task_world *w, uint64_t seed, task_world_stats *stats);

#endif

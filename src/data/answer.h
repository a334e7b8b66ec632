/**
 * @file answer.h
 * @brief Reading a model's answer: the answer-tag parser, the format checker,
 *        exact-match scoring, and the pass\@k / maj\@k estimators (chapter 7).
 *
 * Knows no model: evaluation (chapter 7), rejection sampling (chapter 7) and
 * GRPO's rule rewards (chapter 8) all score a completion with these.
 *
 * A response is *clean* when it is, up to white space at either end, exactly
 *
 *     <think> reasoning </think> <answer> answer </answer>
 *
 * one think block, then one answer block, white space only between them,
 * nothing outside, no tag inside either block, and a non-empty answer.
 */
#ifndef TS_ANSWER_H
#define TS_ANSWER_H

#include <stddef.h>

/** Why a response is or is not clean (the first problem found, in this order). */
typedef enum {
    TS_FORMAT_OK = 0,         /**< one think block, then one answer block, nothing else */
    TS_FORMAT_NO_THINK,       /**< no `<think>…</think>` block */
    TS_FORMAT_NO_ANSWER,      /**< no `<answer>…</answer>` block */
    TS_FORMAT_REPEATED,       /**< a tag occurs more than once */
    TS_FORMAT_ORDER,          /**< tags out of order or nested (answer before think, a tag inside a block) */
    TS_FORMAT_OUTSIDE,        /**< text before `<think>`, between the blocks, or after `</answer>` */
    TS_FORMAT_EMPTY_ANSWER,   /**< the answer block holds only white space */
    TS_FORMAT_N
} ts_format;

/** @brief A short name for @p f ("ok", "no_think", ...). */
const char *ts_format_name(ts_format f);

/**
 * @brief Check the format of @p response (see the file comment).
 * @return TS_FORMAT_OK, or the first problem found.
 */
ts_format ts_format_check(const char *response);

/**
 * @brief The answer a response gives: the text between its first `<answer>`
 *        and the next `</answer>`, white space trimmed, into @p out (cap bytes).
 * @return 1 if there is such a block with a non-empty answer that fits, else 0
 *         (out is then "").
 */
int ts_answer_extract(const char *response, char *out, size_t cap);

/** @brief 1 if @p answer equals @p truth after trimming white space from both. */
int ts_answer_matches(const char *answer, const char *truth);

/** How one response scores. */
typedef struct {
    int has_answer;  /**< an answer block with something in it */
    int correct;     /**< ... whose content matches the truth */
    ts_format format;/**< TS_FORMAT_OK when clean */
} ts_answer_score;

/** @brief Extract, match against @p truth and check the format of @p response. */
ts_answer_score ts_answer_score_of(const char *response, const char *truth);

// [pass-at-k-signature]
/**
 * @brief The unbiased pass\@k estimator of Chen et al. (2021): the chance that
 *        at least one of k samples drawn without replacement from n samples,
 *        c of them correct, is correct:
 *
 *     1 − C(n−c, k) / C(n, k) = 1 − Π_{i=n−c+1}^{n} (1 − k/i)
 *
 * The product form never forms a binomial coefficient, so it neither overflows
 * nor loses precision for large n.
 * @return the estimate in [0, 1]; NAN when k < 1, k > n or c outside 0..n.
 */
double ts_pass_at_k(int n, int c, int k);
// [pass-at-k-signature]

/**
 * @brief Majority vote: the answer given most often among @p answers[0..n-1]
 *        (NULL or "" = no answer, no vote; a tie goes to the answer that
 *        occurs first).
 * @return the index of one sample holding the winning answer, or -1 if none answered.
 */
int ts_majority_vote(const char *const *answers, int n);

#endif

/**
 * @file reward.h
 * @brief GRPO's rule rewards (chapter 8; R1 §2.2.2): an accuracy reward for a
 *        right answer and a format reward for the think/answer structure,
 *        computed from the text a model generated after a chat template's
 *        prompt. No reward model: rules only, so nothing to hack but the rules,
 *        and the rules below close the holes a tiny model finds first.
 *
 * The text scored is the template's response prefix (r1: the `<think>\n` its
 * generation prompt already wrote; r1-zero: nothing) followed by what the
 * model generated, so both templates are scored on the same
 * `<think>…</think> <answer>…</answer>` shape (data/answer.h checks it):
 *
 * | the response                                   | accuracy | format |
 * |------------------------------------------------|----------|--------|
 * | clean, right answer                            | 1        | w      |
 * | clean, wrong (but parseable) answer            | 0        | w      |
 * | clean, but the answer is not a number          | 0        | 0      |
 * | text before, between or after the blocks       | if right | 0      |
 * | a tag missing (no think or no answer block)    | 0        | 0      |
 * | a tag repeated, or tags out of order / nested  | 0        | 0      |
 * | an empty answer                                | 0        | 0      |
 *
 * reward = accuracy_weight·accuracy + format_weight·format. The format reward
 * is paid only with a parseable answer (an integer, the toy world's answers),
 * since a format-only reward is the first thing a policy games: `<think>
 * </think><answer>x</answer>` would earn it. Repeated tags earn nothing at all,
 * not even for a right answer: otherwise a policy writes several answers and
 * the checker's choice of block decides the reward.
 */
#ifndef TS_REWARD_H
#define TS_REWARD_H

#include "data/answer.h"
#include "data/chat.h"

/** The weights of the two rule rewards. */
typedef struct {
    float accuracy_weight; /**< paid for a right answer (1) */
    float format_weight;   /**< paid for a clean response with a parseable answer (0.1) */
} ts_reward_opts;

/** @brief Accuracy 1, format 0.1. */
ts_reward_opts ts_reward_opts_default(void);

/** How one completion scored. */
typedef struct {
    float reward;      /**< accuracy_weight·correct + format_weight·format_ok */
    int correct;       /**< the accuracy reward was paid */
    int format_ok;     /**< the format reward was paid */
    int parseable;     /**< the first answer block holds an integer */
    ts_format format;  /**< what the format checker said */
} ts_reward;

/** @brief 1 if @p answer is an integer: optional '-', then one or more digits, white space around allowed. */
int ts_answer_is_integer(const char *answer);

/**
 * @brief The rule reward of @p generated (the text after template @p t's
 *        generation prompt, without `<|eos|>`) against the true answer
 *        @p truth (see the table in the file comment).
 */
ts_reward ts_reward_of(ts_template t, const char *generated, const char *truth, const ts_reward_opts *o);

#endif

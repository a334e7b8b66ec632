/**
 * @file chat.h
 * @brief Chat templates (chapter 7): how a (prompt, response) pair becomes the
 *        text, and the token ids, a model reads; which of those ids the SFT
 *        loss counts; and the Jinja versions written into a checkpoint's
 *        tokenizer_config.json so other tools render the same string.
 *
 * Two templates:
 *
 *  - **r1-zero**, the prompt of DeepSeek-R1-Zero (R1 paper, Table 1), for a
 *    base model that has seen no chat format. Plain text, no special tokens:
 *    "A conversation between User and Assistant. … User: {prompt}. Assistant:"
 *    and the response follows after one space.
 *  - **r1**, an R1-style chat template with the tokenizer's special tokens:
 *    `<|bos|><|user|>{prompt}<|assistant|><think>\n{reasoning…}<|eos|>`.
 *    The generation prompt already ends in `<think>\n`, as DeepSeek-R1's
 *    template does, so every response starts by thinking; a response that
 *    itself begins with `<think>` (and a newline) has it folded into the prompt's.
 *
 * Rendering a pair gives the prompt part and the response part separately:
 * the model generates after exactly the prompt's tokens, so SFT tokenizes the
 * two parts separately too, and the loss mask is "the response's tokens".
 */
#ifndef TS_CHAT_H
#define TS_CHAT_H

#include "core/common.h"
#include "data/bpe.h"

/** The templates tinyseek knows. */
typedef enum {
    TS_TEMPLATE_R1 = 0,      /**< R1-style chat template with special tokens (the default) */
    TS_TEMPLATE_R1_ZERO = 1, /**< R1-Zero's plain-text prompt for a base model */
    TS_TEMPLATE_QUESTION = 2, /**< the bare question, as the pretraining text asks it ("What is 31+86?") */
    TS_TEMPLATE_N
} ts_template;

/** @brief "r1" or "r1-zero". */
const char *ts_template_name(ts_template t);

/** @brief The template named @p name ("r1", "r1-zero"); TS_ERR_ARG naming the choices otherwise. */
ts_status ts_template_parse(const char *name, ts_template *t);

/**
 * @brief What the model is given to answer @p prompt: the template with the
 *        user's turn and the generation prompt (Jinja's add_generation_prompt).
 * @param t      the template
 * @param prompt the raw question
 * @param out    malloc'd, NUL-terminated (free() it)
 */
ts_status ts_chat_render_prompt(ts_template t, const char *prompt, char **out);

/**
 * @brief What follows the prompt's text in a training pair: the assistant's
 *        turn after the generation prompt, ending with `<|eos|>`. The prompt's
 *        text followed by this is the whole conversation as the Jinja template
 *        renders it.
 * @param t        the template
 * @param response the response as the data files write it ("<think>…</think><answer>…</answer>")
 * @param out      malloc'd, NUL-terminated (free() it)
 */
ts_status ts_chat_render_response(ts_template t, const char *response, char **out);

/** @brief What the generation prompt puts at the start of every response ("<think>\n" for r1, "" for r1-zero). */
const char *ts_chat_response_prefix(ts_template t);

/** @brief The Jinja `chat_template` text of @p t (Hugging Face conventions: messages, add_generation_prompt, bos/eos_token). */
const char *ts_chat_jinja(ts_template t);

/**
 * @brief tokenizer_config.json text: the special tokens and both templates as
 *        a list of named chat templates ("default" = r1, "r1_zero", "question"), the form
 *        Hugging Face's tokenizers read.
 * @param out malloc'd (free() it)
 */
ts_status ts_chat_tokenizer_config(char **out);

/**
 * @brief Render and tokenize a pair: ids = tokens(prompt part) ++ tokens(response part),
 *        the first @p n_prompt of them the prompt's (no loss there).
 * @param tok       the tokenizer (its special tokens become single ids)
 * @param t         the template
 * @param prompt    the raw question
 * @param ids       malloc'd (free() it)
 * @param n         total ids
 * @param n_prompt  ids of the prompt part
 * @param response  NULL for the prompt only (ids are then the generation prompt)
 */
ts_status ts_chat_encode(const bpe_tokenizer *tok, ts_template t, const char *prompt, const char *response, int **ids,
                         int *n, int *n_prompt);

#endif

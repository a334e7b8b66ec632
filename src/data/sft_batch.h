/**
 * @file sft_batch.h
 * @brief Supervised fine-tuning data (chapter 7): JSONL problems and pairs,
 *        their templated token ids, and the batch source that pads them into
 *        rows whose prompt positions carry no loss.
 *
 * A row of an SFT batch, for a pair whose rendered prompt has P tokens and
 * whose whole sequence s has n tokens (prompt, then response, then `<|eos|>`):
 *
 *     position t      0      1    …   P−2     P−1    …   n−2    n−1 …  T−1
 *     tokens[t]      s0     s1    …  s(P−2)  s(P−1)  …  s(n−2)  pad … pad
 *     targets[t]     IGN    IGN   …   IGN     sP     …  s(n−1)  IGN … IGN
 *
 * targets[t] = s(t+1) where t+1 is a response position (t+1 >= P), TS_IGNORE
 * elsewhere: the model reads the prompt but is never asked to predict it, and
 * padding after the end predicts nothing. The loss (train/sft.c) is the mean
 * cross-entropy over the counted positions.
 */
#ifndef TS_SFT_BATCH_H
#define TS_SFT_BATCH_H

#include "data/batch.h"
#include "data/bpe.h"
#include "data/chat.h"

/** One line of a JSONL file of problems or pairs. */
typedef struct {
    char *prompt;     /**< the raw question ("What is 347+28?"), no template */
    char *response;   /**< "<think>…</think><answer>…</answer>", or NULL where the line has none */
    char *answer;     /**< the checkable answer: the line's "answer", else the response's answer tag; NULL if neither */
    int difficulty;   /**< the line's "difficulty", 0 when absent */
} ts_example;

/** The lines of a JSONL file. */
typedef struct {
    ts_example *ex; /**< n examples */
    int n;          /**< how many */
} ts_examples;

/**
 * @brief Read a JSONL file: one object per line with a string "prompt", an
 *        optional string "response", an optional string or number "answer" and
 *        an optional integer "difficulty" (blank lines skipped).
 * @param set            filled with the examples (free with ts_examples_free())
 * @param path           the JSONL file
 * @param need_response  1: every line must have a response (SFT pairs)
 * @param need_answer    1: every line must have an answer, given or in the response's tag (problems to score)
 * @return TS_ERR_FORMAT naming the file, line and field for a bad line; TS_ERR_IO.
 */
ts_status ts_examples_load(ts_examples *set, const char *path, int need_response, int need_answer);

/** @brief Release a set read by ts_examples_load(); leaves it zeroed. */
void ts_examples_free(ts_examples *set);

/** One templated pair: ids = prompt's tokens ++ response's tokens (ending with `<|eos|>`). */
typedef struct {
    int *ids;     /**< n ids */
    int n;        /**< total tokens */
    int n_prompt; /**< the first n_prompt are the prompt's (no loss) */
} ts_sft_seq;

/** Every pair of a set, templated and tokenized. */
typedef struct {
    ts_sft_seq *seq; /**< n pairs */
    int n;           /**< how many */
    int max_len;     /**< longest seq[i].n */
    int pad_id;      /**< `<|pad|>`, read by padded positions (their targets are TS_IGNORE) */
} ts_sft_data;

/**
 * @brief Render every pair of @p set with template @p t and tokenize it.
 * @param d        filled with the pairs' ids (free with ts_sft_data_free())
 * @param tok      the tokenizer
 * @param t        the template
 * @param set      the pairs (every one needs a response)
 * @param source   the file name errors start with
 * @param max_len  the most tokens a pair may have (the model's context); a longer one is an error naming it
 */
ts_status ts_sft_data_build(ts_sft_data *d, const bpe_tokenizer *tok, ts_template t, const ts_examples *set,
                            int max_len, const char *source);

/** @brief Release what ts_sft_data_build() made; leaves @p d zeroed. */
void ts_sft_data_free(ts_sft_data *d);

// [sft-row-signature]
/**
 * @brief One row of an SFT batch (see the file comment): tokens[t] = s[t] and
 *        targets[t] = s[t+1] where t+1 is a response position, TS_IGNORE
 *        elsewhere; positions from s->n−1 to T−1 hold @p pad_id with target TS_IGNORE.
 * @param s       the pair (s->n − 1 <= T)
 * @param T       positions in the row
 * @param pad_id  token read at padded positions
 * @param tokens  (T) out
 * @param targets (T) out
 */
void ts_sft_fill_row(const ts_sft_seq *s, int T, int pad_id, int *tokens, int *targets);
// [sft-row-signature]

/**
 * @brief SFT's batch source: B pairs per batch, padded to the longest of the
 *        batch, in an order shuffled afresh each epoch. The state holds the
 *        position in the epoch (pos) and the RNG state the epoch's permutation
 *        was drawn from (rng[0], seeded from @p seed on TS_STREAM_DATA), so a
 *        resumed run rebuilds the permutation and draws the very same batches.
 * @param src  the source to set up
 * @param d    the pairs; must outlive the source
 * @param B    pairs per batch
 * @param seed data-order seed
 * Free with ts_sft_source_free().
 */
ts_status ts_sft_source(ts_batch_source *src, const ts_sft_data *d, int B, uint64_t seed);

/** @brief Release what ts_sft_source() allocated. */
void ts_sft_source_free(ts_batch_source *src);

#endif

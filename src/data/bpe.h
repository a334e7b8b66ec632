/**
 * @file bpe.h
 * @brief Byte-level byte-pair encoding (BPE), the way GPT-2, Llama 3 and
 *        DeepSeek-V3 tokenize, saved as a Hugging Face `tokenizer.json` (chapter 1).
 *
 * Ids: the 256 byte tokens come first (id b is the byte b for a tokenizer
 * trained here), then one token per learned merge, then the special tokens
 * (`<|bos|>`, `<|eos|>`, `<|pad|>`, `<|user|>`, `<|assistant|>`, `<think>`,
 * `</think>`, `<answer>`, `</answer>`). Any byte string encodes, and decode()
 * gives back exactly those bytes (invalid UTF-8 and NUL bytes included).
 *
 * Encoding runs in three stages:
 *   1. special tokens: every occurrence of a special token's text becomes its id;
 *   2. pre-tokenization (bpe_next_chunk()): the text between them is cut into
 *      chunks, and merges never cross a chunk boundary;
 *   3. in each chunk, starting from its bytes, the adjacent pair with the lowest
 *      merge rank is merged (bpe_apply_merge()) until no learned pair is left.
 *
 * Pre-tokenization is Hugging Face's `Digits(individual_digits=true)` followed
 * by `ByteLevel`'s GPT-2 pattern
 * `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`:
 *   - every ASCII digit is a chunk of its own, so no token ever holds a digit
 *     together with anything else (numbers are always read digit by digit);
 *   - the text between digits is cut into English contractions, letter runs
 *     and punctuation runs (each with at most one leading space), and
 *     whitespace runs (a run before a word leaves its last space to the word).
 * Classes work on bytes: A–Z, a–z and every byte >= 0x80 count as letters
 * (so UTF-8 words stay whole); space, \\t, \\n, \\v, \\f, \\r are whitespace; the
 * rest is punctuation. For ASCII text this is exactly what Hugging Face's
 * tokenizers computes; non-ASCII punctuation, spaces and numerals differ
 * (they are letters here).
 */
#ifndef TS_BPE_H
#define TS_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/** The special tokens every tinyseek tokenizer has, in id order after the merges. */
typedef enum {
    BPE_BOS = 0,       /**< `<|bos|>` begin of sequence */
    BPE_EOS,           /**< `<|eos|>` end of sequence */
    BPE_PAD,           /**< `<|pad|>` padding */
    BPE_USER,          /**< `<|user|>` chat template: the user's turn */
    BPE_ASSISTANT,     /**< `<|assistant|>` chat template: the model's turn */
    BPE_THINK,         /**< `<think>` */
    BPE_THINK_END,     /**< `</think>` */
    BPE_ANSWER,        /**< `<answer>` */
    BPE_ANSWER_END,    /**< `</answer>` */
    BPE_N_SPECIAL
} bpe_special;

/** Largest vocabulary a tokenizer may have (ids fit comfortably in int). */
#define BPE_MAX_VOCAB 1048576

/** One merge rule: the pair (left, right) becomes token id. Rank = index in the list. */
typedef struct {
    int left;  /**< id of the left token of the pair */
    int right; /**< id of the right token of the pair */
    int id;    /**< id of the token the pair becomes */
} bpe_merge;

/** Open-addressing map from a (left, right) pair to a value (internal). */
typedef struct {
    uint64_t *keys; /**< [cap] left << 32 | right, or UINT64_MAX for an empty slot */
    int64_t *vals;  /**< [cap] the value of each key */
    size_t cap;     /**< slots (a power of two) */
    size_t count;   /**< keys stored */
} bpe_pairmap;

/** A tokenizer. Zero-initialise, then bpe_train() or bpe_load(); bpe_free() when done. */
typedef struct {
    int vocab_size;            /**< ids are 0 .. vocab_size-1, special tokens included */
    int n_merges;              /**< merge rules, in rank order */
    bpe_merge *merges;         /**< [n_merges] */
    int64_t *merge_counts;     /**< [n_merges] pair count when learned (bpe_train only; else NULL) */
    int byte_id[256];          /**< token id of each single byte */
    int special_id[BPE_N_SPECIAL]; /**< ids of the special tokens */
    unsigned char *is_special; /**< [vocab_size] 1 for special (added) tokens */
    size_t *tok_off;           /**< [vocab_size] offset of each token's bytes in tok_bytes */
    uint32_t *tok_len;         /**< [vocab_size] byte length of each token */
    unsigned char *tok_bytes;  /**< all token byte strings, concatenated */
    int n_added;               /**< special (added) tokens, in id order */
    int *added_ids;            /**< [n_added] */
    bpe_pairmap rank;          /**< (left, right) -> merge rank */
    unsigned char special_first[256]; /**< 1 if some special token starts with this byte */
} bpe_tokenizer;

/** Called during training every few merges with the number done and the most possible. */
typedef void (*bpe_progress_fn)(int merges_done, int merges_max, void *ctx);

/** @brief The text of a special token, e.g. "<think>". */
const char *bpe_special_text(bpe_special s);

/** @brief The id of a special token in @p tok. */
int bpe_special_id(const bpe_tokenizer *tok, bpe_special s);

/** @brief The bytes a token stands for (not NUL-terminated); *len gets their count. NULL if out of range. */
const unsigned char *bpe_token_bytes(const bpe_tokenizer *tok, int id, size_t *len);

/**
 * @brief Pre-tokenizer: the end of the chunk that starts at @p pos in s[0..end).
 * The caller cuts the text at special tokens first and passes the end of the
 * piece as @p end (see bpe.h for the rules). Always returns a value > pos.
 */
size_t bpe_next_chunk(const unsigned char *s, size_t end, size_t pos);

// [bpe-apply-merge-signature]
/**
 * @brief Replace every occurrence of the pair (left, right) in ids[0..n), left
 * to right and without overlap, by new_id. Works in place.
 * @return the new length.
 */
int bpe_apply_merge(int *ids, int n, int left, int right, int new_id);

// [bpe-apply-merge-signature]
/**
 * @brief Learn merges on @p text until the tokenizer has @p vocab_size tokens
 * (special tokens included) or no pair occurs at least twice.
 * Pair counts are taken over unique chunks weighted by their frequency; ties go
 * to the smallest (left, right) ids, so the result is fully deterministic and
 * independent of the thread count. Special-token texts in the corpus are
 * skipped, not learned.
 * @param tok        the tokenizer to fill (its old contents are not freed)
 * @param text       the training corpus (any bytes)
 * @param len        its length in bytes
 * @param vocab_size the most tokens, from 256 + BPE_N_SPECIAL to BPE_MAX_VOCAB
 * @param progress   called now and then with the merges done; may be NULL
 * @param ctx        passed to @p progress
 */
ts_status bpe_train(bpe_tokenizer *tok, const void *text, size_t len, int vocab_size, bpe_progress_fn progress,
                    void *ctx);

/** @brief Encode bytes to ids; *ids is malloc'd (free() it). */
ts_status bpe_encode(const bpe_tokenizer *tok, const void *text, size_t len, int **ids, size_t *n_ids);

/** @brief Decode ids to bytes; *text is malloc'd and NUL-terminated (free() it). TS_ERR_RANGE for a bad id. */
ts_status bpe_decode(const bpe_tokenizer *tok, const int *ids, size_t n_ids, char **text, size_t *len);

/** @brief The tokenizer as Hugging Face tokenizer.json text; *json is malloc'd. */
ts_status bpe_to_json(const bpe_tokenizer *tok, char **json);

/**
 * @brief Read tokenizer.json text; @p name (a file name) starts every error message.
 * Validates the format and gives TS_ERR_FORMAT with a one-line reason.
 */
ts_status bpe_from_json(bpe_tokenizer *tok, const char *json, size_t len, const char *name);

/** @brief Save as tokenizer.json, atomically (temporary file, fsync, rename). */
ts_status bpe_save(const bpe_tokenizer *tok, const char *path);

/** @brief Load a tokenizer.json written by bpe_save() (or a compatible one). */
ts_status bpe_load(bpe_tokenizer *tok, const char *path);

/**
 * @brief Write the training log as CSV: `merge,left,right,count,token_id,token`,
 * one row per merge (token in the byte-level spelling of tokenizer.json, quoted).
 * Needs a tokenizer fresh from bpe_train(). Atomic.
 */
ts_status bpe_write_merge_log(const bpe_tokenizer *tok, const char *path);

/** @brief The byte-level (GPT-2) spelling of bytes, as used in tokenizer.json; malloc'd, NUL-terminated. */
char *bpe_bytes_to_unicode(const unsigned char *bytes, size_t len);

/** @brief Release everything; leaves @p tok zeroed. */
void bpe_free(bpe_tokenizer *tok);

#endif

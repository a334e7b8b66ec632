/**
 * @file bpe.c
 * @brief Byte-level BPE: pre-tokenizer, training, encode/decode, and the
 *        Hugging Face tokenizer.json format. See bpe.h for the rules.
 */
#include "data/bpe.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "io/fileio.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const char *const special_texts[BPE_N_SPECIAL] = {
    "<|bos|>", "<|eos|>", "<|pad|>", "<|user|>", "<|assistant|>", "<think>", "</think>", "<answer>", "</answer>",
};

const char *bpe_special_text(bpe_special s) { return (unsigned)s < BPE_N_SPECIAL ? special_texts[s] : ""; }

int bpe_special_id(const bpe_tokenizer *tok, bpe_special s) {
    return (unsigned)s < BPE_N_SPECIAL ? tok->special_id[s] : -1;
}

const unsigned char *bpe_token_bytes(const bpe_tokenizer *tok, int id, size_t *len) {
    if (id < 0 || id >= tok->vocab_size) return NULL;
    if (len) *len = tok->tok_len[id];
    return tok->tok_bytes + tok->tok_off[id];
}

/* ==== small containers ===================================================== */

typedef struct {
    int *data;
    size_t len, cap;
} int_vec;

static int ivec_reserve(int_vec *v, size_t extra) {
    if (v->len + extra <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < v->len + extra) cap *= 2;
    int *p = realloc(v->data, cap * sizeof *p);
    if (!p) return -1;
    v->data = p;
    v->cap = cap;
    return 0;
}

typedef struct {
    unsigned char *data;
    size_t len, cap;
} byte_vec;

static int bvec_append(byte_vec *v, const void *p, size_t n) {
    if (v->len + n > v->cap) {
        size_t cap = v->cap ? v->cap : 256;
        while (cap < v->len + n) cap *= 2;
        unsigned char *q = realloc(v->data, cap);
        if (!q) return -1;
        v->data = q;
        v->cap = cap;
    }
    if (n) memcpy(v->data + v->len, p, n);
    v->len += n;
    return 0;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return mix64(h ^ n);
}

/* ---- (left, right) -> int64 map ------------------------------------------ */

#define PAIR_EMPTY UINT64_MAX

static uint64_t pair_key(int left, int right) { return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right; }

static int pairmap_rehash(bpe_pairmap *m, size_t cap) {
    uint64_t *keys = malloc(cap * sizeof *keys);
    int64_t *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < cap; i++) keys[i] = PAIR_EMPTY;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == PAIR_EMPTY) continue;
        size_t j = (size_t)mix64(m->keys[i]) & (cap - 1);
        while (keys[j] != PAIR_EMPTY) j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

/* The value for key, or NULL if absent. */
static int64_t *pairmap_find(const bpe_pairmap *m, uint64_t key) {
    if (!m->cap) return NULL;
    size_t i = (size_t)mix64(key) & (m->cap - 1);
    while (m->keys[i] != PAIR_EMPTY) {
        if (m->keys[i] == key) return &m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

/* The value for key, inserted as 0 if absent; NULL only when out of memory. */
static int64_t *pairmap_get(bpe_pairmap *m, uint64_t key) {
    int64_t *v = pairmap_find(m, key);
    if (v) return v;
    if (2 * (m->count + 1) > m->cap && pairmap_rehash(m, m->cap ? 2 * m->cap : 1024)) return NULL;
    size_t i = (size_t)mix64(key) & (m->cap - 1);
    while (m->keys[i] != PAIR_EMPTY) i = (i + 1) & (m->cap - 1);
    m->keys[i] = key;
    m->vals[i] = 0;
    m->count++;
    return &m->vals[i];
}

static void pairmap_free(bpe_pairmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- byte string -> int64 map, entries kept in insertion order ------------- */

typedef struct {
    long *slots;    /* entry index, or -1 */
    size_t cap;
    size_t *off;    /* entry -> offset of its key in pool */
    uint32_t *len;  /* entry -> key length */
    uint64_t *hash; /* entry -> hash of its key */
    int64_t *val;   /* entry -> value */
    size_t count, ecap;
    byte_vec pool;
} strmap;

static void strmap_free(strmap *m) {
    free(m->slots);
    free(m->off);
    free(m->len);
    free(m->hash);
    free(m->val);
    free(m->pool.data);
    memset(m, 0, sizeof *m);
}

static int strmap_rehash(strmap *m, size_t cap) {
    long *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i] = -1;
    for (size_t e = 0; e < m->count; e++) {
        size_t j = (size_t)m->hash[e] & (cap - 1);
        while (slots[j] >= 0) j = (j + 1) & (cap - 1);
        slots[j] = (long)e;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* Entry index of key; if absent: -1, or (add) a new entry with value 0. -2 when out of memory. */
static long strmap_lookup(strmap *m, const unsigned char *key, size_t n, int add) {
    uint64_t h = hash_bytes(key, n);
    if (m->cap) {
        size_t i = (size_t)h & (m->cap - 1);
        for (long e; (e = m->slots[i]) >= 0; i = (i + 1) & (m->cap - 1))
            if (m->hash[e] == h && m->len[e] == n && memcmp(m->pool.data + m->off[e], key, n) == 0) return e;
    }
    if (!add) return -1;
    if (n > UINT32_MAX) return -2;
    if (2 * (m->count + 1) > m->cap && strmap_rehash(m, m->cap ? 2 * m->cap : 1024)) return -2;
    if (m->count == m->ecap) {
        size_t ecap = m->ecap ? 2 * m->ecap : 512;
        size_t *off = realloc(m->off, ecap * sizeof *off);
        if (off) m->off = off;
        uint32_t *len = realloc(m->len, ecap * sizeof *len);
        if (len) m->len = len;
        uint64_t *hash = realloc(m->hash, ecap * sizeof *hash);
        if (hash) m->hash = hash;
        int64_t *val = realloc(m->val, ecap * sizeof *val);
        if (val) m->val = val;
        if (!off || !len || !hash || !val) return -2;
        m->ecap = ecap;
    }
    size_t e = m->count;
    m->off[e] = m->pool.len;
    if (bvec_append(&m->pool, key, n)) return -2;
    m->len[e] = (uint32_t)n;
    m->hash[e] = h;
    m->val[e] = 0;
    m->count++;
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i] >= 0) i = (i + 1) & (m->cap - 1);
    m->slots[i] = (long)e;
    return (long)e;
}

/* ==== the vocabulary being built =========================================== */

typedef struct {
    byte_vec bytes;
    size_t *off;
    uint32_t *len;
    unsigned char *special;
    int n, cap;
    strmap index; /* bytes -> id, ordinary (non-special) tokens only */
} vocab_builder;

/* Append a token; returns its id, or -1 when out of memory. */
static int vb_add(vocab_builder *vb, const unsigned char *p, size_t n, int special) {
    if (vb->n == vb->cap) {
        int cap = vb->cap ? 2 * vb->cap : 512;
        size_t *off = realloc(vb->off, (size_t)cap * sizeof *off);
        if (off) vb->off = off;
        uint32_t *len = realloc(vb->len, (size_t)cap * sizeof *len);
        if (len) vb->len = len;
        unsigned char *sp = realloc(vb->special, (size_t)cap);
        if (sp) vb->special = sp;
        if (!off || !len || !sp) return -1;
        vb->cap = cap;
    }
    int id = vb->n;
    vb->off[id] = vb->bytes.len;
    vb->len[id] = (uint32_t)n;
    vb->special[id] = (unsigned char)special;
    if (bvec_append(&vb->bytes, p, n)) return -1;
    if (!special) {
        long e = strmap_lookup(&vb->index, p, n, 1);
        if (e < 0) return -1;
        vb->index.val[e] = id;
    }
    vb->n++;
    return id;
}

static void vb_free(vocab_builder *vb) {
    free(vb->bytes.data);
    free(vb->off);
    free(vb->len);
    free(vb->special);
    strmap_free(&vb->index);
    memset(vb, 0, sizeof *vb);
}

/* Hand the arrays to tok, then fill in what is derived from them: the special
 * ids, the merge-rank lookup, the first bytes of special tokens. */
static ts_status vb_finish(vocab_builder *vb, bpe_tokenizer *tok, const char *name) {
    tok->vocab_size = vb->n;
    tok->tok_bytes = vb->bytes.data;
    tok->tok_off = vb->off;
    tok->tok_len = vb->len;
    tok->is_special = vb->special;
    strmap_free(&vb->index);
    memset(vb, 0, sizeof *vb);
    if (!tok->tok_bytes) tok->tok_bytes = calloc(1, 1);
    tok->n_added = 0;
    for (int id = 0; id < tok->vocab_size; id++) tok->n_added += tok->is_special[id];
    tok->added_ids = ts_malloc((size_t)(tok->n_added ? tok->n_added : 1) * sizeof(int), "special token ids");
    if (!tok->added_ids || !tok->tok_bytes) return TS_ERR_NOMEM;
    int k = 0;
    memset(tok->special_first, 0, sizeof tok->special_first);
    for (int id = 0; id < tok->vocab_size; id++) {
        if (!tok->is_special[id]) continue;
        tok->added_ids[k++] = id;
        if (tok->tok_len[id]) tok->special_first[tok->tok_bytes[tok->tok_off[id]]] = 1;
    }
    for (int s = 0; s < BPE_N_SPECIAL; s++) {
        tok->special_id[s] = -1;
        size_t n = strlen(special_texts[s]);
        for (int j = 0; j < tok->n_added; j++) {
            int id = tok->added_ids[j];
            if (tok->tok_len[id] == n && memcmp(tok->tok_bytes + tok->tok_off[id], special_texts[s], n) == 0)
                tok->special_id[s] = id;
        }
        if (tok->special_id[s] < 0)
            return ts_fail(TS_ERR_FORMAT, "%s: added_tokens: the special token \"%s\" is missing", name,
                           special_texts[s]);
    }
    for (int r = 0; r < tok->n_merges; r++) {
        int64_t *v = pairmap_get(&tok->rank, pair_key(tok->merges[r].left, tok->merges[r].right));
        if (!v) return ts_fail(TS_ERR_NOMEM, "out of memory building the merge table");
        /* Stored as rank + 1, so that 0 means "just inserted"; a repeated pair keeps its first rank. */
        if (*v == 0) *v = r + 1;
    }
    return TS_OK;
}

void bpe_free(bpe_tokenizer *tok) {
    free(tok->merges);
    free(tok->merge_counts);
    free(tok->is_special);
    free(tok->tok_off);
    free(tok->tok_len);
    free(tok->tok_bytes);
    free(tok->added_ids);
    pairmap_free(&tok->rank);
    memset(tok, 0, sizeof *tok);
}

/* ==== pre-tokenization ====================================================== */

enum { CLS_SPACE, CLS_LETTER, CLS_DIGIT, CLS_OTHER };

static int byte_class(unsigned char c) {
    if (c >= '0' && c <= '9') return CLS_DIGIT;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return CLS_LETTER;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return CLS_SPACE;
    return CLS_OTHER;
}

//! [bpe-pretokenize]
/* The class of s[i], with the end of the text and every digit reading as a
 * boundary (CLS_DIGIT): Digits(individual_digits=true) runs first, so the
 * GPT-2 rules below see the text between two digits as a piece of its own. */
static int class_at(const unsigned char *s, size_t end, size_t i) { return i < end ? byte_class(s[i]) : CLS_DIGIT; }

size_t bpe_next_chunk(const unsigned char *s, size_t end, size_t pos) {
    if (byte_class(s[pos]) == CLS_DIGIT) return pos + 1; /* a digit is always a chunk of its own */
    /* GPT-2's pattern, alternative by alternative. */
    if (s[pos] == '\'' && pos + 1 < end) { /* 's 't 're 've 'm 'll 'd */
        unsigned char a = s[pos + 1], b = pos + 2 < end ? s[pos + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return pos + 3;
    }
    size_t i = pos;
    int next = class_at(s, end, i + 1);
    if (s[i] == ' ' && (next == CLS_LETTER || next == CLS_OTHER)) i++; /* the optional leading space */
    int run = byte_class(s[i]);
    if (run == CLS_LETTER || run == CLS_OTHER) { /* ?\p{L}+ and ?[^\s\p{L}\p{N}]+ */
        while (class_at(s, end, i) == run) i++;
        return i;
    }
    /* Whitespace: \s+(?!\S) leaves the last space of a run to the word after it. */
    while (class_at(s, end, i) == CLS_SPACE) i++;
    next = class_at(s, end, i);
    if ((next == CLS_LETTER || next == CLS_OTHER) && i - pos >= 2) return i - 1;
    return i;
}
//! [bpe-pretokenize]

/* ---- special tokens in the text ------------------------------------------ */

/* The special tokens to look for: a tokenizer's added tokens (tok set), or
 * during training the fixed list (text/len/id). */
typedef struct {
    const unsigned char *text[BPE_N_SPECIAL];
    size_t len[BPE_N_SPECIAL];
    int id[BPE_N_SPECIAL];
    int n;
    const unsigned char *first; /* [256]: 1 if some special token starts with this byte */
    const bpe_tokenizer *tok;
} special_set;

static int special_count(const special_set *ss) { return ss->tok ? ss->tok->n_added : ss->n; }

static void special_get(const special_set *ss, int k, const unsigned char **text, size_t *len, int *id) {
    if (ss->tok) {
        int t = ss->tok->added_ids[k];
        *text = ss->tok->tok_bytes + ss->tok->tok_off[t];
        *len = ss->tok->tok_len[t];
        *id = t;
    } else {
        *text = ss->text[k];
        *len = ss->len[k];
        *id = ss->id[k];
    }
}

/* Longest special token starting at pos: its id and length, or -1. */
static int special_at(const special_set *ss, const unsigned char *s, size_t len, size_t pos, size_t *mlen) {
    if (!ss->first[s[pos]]) return -1;
    int best = -1;
    size_t best_len = 0;
    for (int k = 0; k < special_count(ss); k++) {
        const unsigned char *t;
        size_t n;
        int id;
        special_get(ss, k, &t, &n, &id);
        if (n > best_len && n <= len - pos && memcmp(s + pos, t, n) == 0) {
            best = id;
            best_len = n;
        }
    }
    *mlen = best_len;
    return best;
}

/* Position of the next special token at or after pos (len if none). */
static size_t next_special(const special_set *ss, const unsigned char *s, size_t len, size_t pos, int *id,
                           size_t *mlen) {
    for (; pos < len; pos++)
        if ((*id = special_at(ss, s, len, pos, mlen)) >= 0) return pos;
    *id = -1;
    *mlen = 0;
    return len;
}

/* ==== merging ================================================================ */

//! [bpe-merge]
int bpe_apply_merge(int *ids, int n, int left, int right, int new_id) {
    int out = 0;
    for (int i = 0; i < n; i++) {
        if (i + 1 < n && ids[i] == left && ids[i + 1] == right) {
            ids[out++] = new_id; /* the pair becomes one token ... */
            i++;                 /* ... and its right half is consumed */
        } else {
            ids[out++] = ids[i];
        }
    }
    return out;
}
//! [bpe-merge]

static int has_pair(const int *ids, int n, int left, int right) {
    for (int i = 0; i + 1 < n; i++)
        if (ids[i] == left && ids[i + 1] == right) return 1;
    return 0;
}

/* ==== training ================================================================ */

/* Below this many table slots or chunk bytes, a merge step runs on one thread. */
#define PARALLEL_MIN (1 << 16)

/* Pair order used to pick the next merge: higher count first, then the
 * smaller (left, right), so there is never a tie left to chance. */
static int pair_better(int64_t count, uint64_t key, int64_t best_count, uint64_t best_key) {
    return count > best_count || (count == best_count && key < best_key);
}

static void best_pair(const bpe_pairmap *counts, int64_t *best_count, uint64_t *best_key) {
    int64_t bc = 0;
    uint64_t bk = PAIR_EMPTY;
#ifdef _OPENMP
    /* Threads pay off only for big tables; the answer is the same either way. */
#pragma omp parallel if (counts->cap >= PARALLEL_MIN)
    {
        int64_t tc = 0;
        uint64_t tk = PAIR_EMPTY;
#pragma omp for schedule(static)
        for (long i = 0; i < (long)counts->cap; i++)
            if (counts->keys[i] != PAIR_EMPTY && pair_better(counts->vals[i], counts->keys[i], tc, tk)) {
                tc = counts->vals[i];
                tk = counts->keys[i];
            }
#pragma omp critical
        if (pair_better(tc, tk, bc, bk)) {
            bc = tc;
            bk = tk;
        }
    }
#else
    for (size_t i = 0; i < counts->cap; i++)
        if (counts->keys[i] != PAIR_EMPTY && pair_better(counts->vals[i], counts->keys[i], bc, bk)) {
            bc = counts->vals[i];
            bk = counts->keys[i];
        }
#endif
    *best_count = bc;
    *best_key = bk;
}

/* Add weight * (every adjacent pair of word) to the counts. */
static int count_pairs(bpe_pairmap *counts, const int *ids, int n, int64_t weight) {
    for (int i = 0; i + 1 < n; i++) {
        int64_t *v = pairmap_get(counts, pair_key(ids[i], ids[i + 1]));
        if (!v) return -1;
        *v += weight;
    }
    return 0;
}

typedef struct {
    strmap words;      /* unique chunk -> frequency */
    int *ids;          /* token ids of every unique chunk, back to back */
    size_t *word_off;  /* [n_words] */
    int *word_len;     /* [n_words] current length in tokens */
    unsigned char *touched;
    bpe_pairmap counts;
    vocab_builder vb;
    byte_vec tmp;
    bpe_merge *merges;
    int64_t *merge_counts;
    int n_merges, cap_merges;
} trainer;

static void trainer_free(trainer *t) {
    strmap_free(&t->words);
    free(t->ids);
    free(t->word_off);
    free(t->word_len);
    free(t->touched);
    pairmap_free(&t->counts);
    vb_free(&t->vb);
    free(t->tmp.data);
    free(t->merges);
    free(t->merge_counts);
}

static void default_specials(special_set *ss, unsigned char first[256]) {
    memset(ss, 0, sizeof *ss);
    memset(first, 0, 256);
    for (int s = 0; s < BPE_N_SPECIAL; s++) {
        ss->text[s] = (const unsigned char *)special_texts[s];
        ss->len[s] = strlen(special_texts[s]);
        ss->id[s] = s;
        first[(unsigned char)special_texts[s][0]] = 1;
    }
    ss->n = BPE_N_SPECIAL;
    ss->first = first;
}

//! [bpe-train-step]
/* One merge step: take the most frequent pair, give it a token, and rewrite
 * every chunk that contains it, updating the pair counts of those chunks. */
static ts_status train_step(trainer *t, int64_t count, int left, int right) {
    /* The new token's bytes are its halves' bytes; a byte string reached
     * before by another pair of halves keeps its id (tokenizer.json's vocab
     * maps strings to ids, so a string can only have one). */
    t->tmp.len = 0;
    if (bvec_append(&t->tmp, t->vb.bytes.data + t->vb.off[left], t->vb.len[left]) ||
        bvec_append(&t->tmp, t->vb.bytes.data + t->vb.off[right], t->vb.len[right]))
        return ts_fail(TS_ERR_NOMEM, "out of memory in BPE training");
    long e = strmap_lookup(&t->vb.index, t->tmp.data, t->tmp.len, 0);
    int new_id = e >= 0 ? (int)t->vb.index.val[e] : vb_add(&t->vb, t->tmp.data, t->tmp.len, 0);
    if (new_id < 0) return ts_fail(TS_ERR_NOMEM, "out of memory in BPE training");
    if (t->n_merges == t->cap_merges) {
        int cap = t->cap_merges ? 2 * t->cap_merges : 256;
        bpe_merge *m = realloc(t->merges, (size_t)cap * sizeof *m);
        if (m) t->merges = m;
        int64_t *c = realloc(t->merge_counts, (size_t)cap * sizeof *c);
        if (c) t->merge_counts = c;
        if (!m || !c) return ts_fail(TS_ERR_NOMEM, "out of memory in BPE training");
        t->cap_merges = cap;
    }
    t->merges[t->n_merges] = (bpe_merge){left, right, new_id};
    t->merge_counts[t->n_merges++] = count;

    long n_words = (long)t->words.count;
    /* Finding the chunks that hold the pair is read-only: threads may split it. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (t->words.pool.len >= PARALLEL_MIN)
#endif
    for (long w = 0; w < n_words; w++) t->touched[w] = (unsigned char)has_pair(t->ids + t->word_off[w], t->word_len[w], left, right);
    /* Rewriting them runs in chunk order, so the counts never depend on threads. */
    for (long w = 0; w < n_words; w++) {
        if (!t->touched[w]) continue;
        int *ids = t->ids + t->word_off[w];
        int64_t weight = t->words.val[w];
        if (count_pairs(&t->counts, ids, t->word_len[w], -weight)) goto oom;
        int before = t->word_len[w];
        t->word_len[w] = bpe_apply_merge(ids, before, left, right, new_id);
        if (t->word_len[w] >= before || t->word_len[w] < 1) /* the pair was there: it must have merged */
            return ts_fail(TS_ERR_ARG, "bpe_apply_merge returned %d for a chunk of %d tokens holding the pair (%d, %d)",
                           t->word_len[w], before, left, right);
        if (count_pairs(&t->counts, ids, t->word_len[w], weight)) goto oom;
    }
    return TS_OK;
oom:
    return ts_fail(TS_ERR_NOMEM, "out of memory in BPE training");
}
//! [bpe-train-step]

ts_status bpe_train(bpe_tokenizer *tok, const void *text, size_t len, int vocab_size, bpe_progress_fn progress,
                    void *ctx) {
    memset(tok, 0, sizeof *tok);
    if (vocab_size < 256 + BPE_N_SPECIAL || vocab_size > BPE_MAX_VOCAB)
        return ts_fail(TS_ERR_RANGE, "vocab size must be between %d and %d, got %d", 256 + BPE_N_SPECIAL,
                       BPE_MAX_VOCAB, vocab_size);
    const unsigned char *s = text;
    trainer t = {0};
    ts_status st = TS_OK;

    special_set ss;
    unsigned char first[256];
    default_specials(&ss, first);
    //! [bpe-train-chunks]
    /* 1. Count the unique chunks of the corpus (special tokens are skipped). */
    for (size_t pos = 0; pos < len;) {
        int sid;
        size_t slen, seg_end = next_special(&ss, s, len, pos, &sid, &slen);
        while (pos < seg_end) {
            size_t end = bpe_next_chunk(s, seg_end, pos);
            long e = strmap_lookup(&t.words, s + pos, end - pos, 1);
            if (e < 0) goto oom;
            t.words.val[e]++;
            pos = end;
        }
        pos += slen;
    }
    //! [bpe-train-chunks]

    /* 2. Every unique chunk starts as its bytes; the vocabulary as the 256 bytes. */
    size_t n_words = t.words.count;
    t.ids = malloc((t.words.pool.len ? t.words.pool.len : 1) * sizeof *t.ids);
    t.word_off = malloc((n_words ? n_words : 1) * sizeof *t.word_off);
    t.word_len = malloc((n_words ? n_words : 1) * sizeof *t.word_len);
    t.touched = malloc(n_words ? n_words : 1);
    if (!t.ids || !t.word_off || !t.word_len || !t.touched) goto oom;
    for (size_t w = 0; w < n_words; w++) {
        t.word_off[w] = t.words.off[w];
        t.word_len[w] = (int)t.words.len[w];
        for (size_t i = 0; i < t.words.len[w]; i++) t.ids[t.words.off[w] + i] = t.words.pool.data[t.words.off[w] + i];
        if (count_pairs(&t.counts, t.ids + t.word_off[w], t.word_len[w], t.words.val[w])) goto oom;
    }
    for (int b = 0; b < 256; b++) {
        unsigned char byte = (unsigned char)b;
        if (vb_add(&t.vb, &byte, 1, 0) != b) goto oom;
    }

    //! [bpe-train-loop]
    /* 3. Merge the most frequent pair until the vocabulary is full. */
    int max_tokens = vocab_size - BPE_N_SPECIAL, max_merges = max_tokens - 256;
    while (t.vb.n < max_tokens) {
        int64_t count;
        uint64_t key;
        best_pair(&t.counts, &count, &key);
        if (count < 2) break; /* nothing left that occurs twice */
        if ((st = train_step(&t, count, (int)(key >> 32), (int)(key & 0xffffffffu)))) goto done;
        if (progress && t.n_merges % 64 == 0) progress(t.n_merges, max_merges, ctx);
    }
    //! [bpe-train-loop]
    if (progress) progress(t.n_merges, max_merges, ctx);

    /* 4. Special tokens come last. */
    for (int k = 0; k < BPE_N_SPECIAL; k++)
        if (vb_add(&t.vb, (const unsigned char *)special_texts[k], strlen(special_texts[k]), 1) < 0) goto oom;
    tok->merges = t.merges;
    tok->merge_counts = t.merge_counts;
    tok->n_merges = t.n_merges;
    t.merges = NULL;
    t.merge_counts = NULL;
    for (int b = 0; b < 256; b++) tok->byte_id[b] = b;
    st = vb_finish(&t.vb, tok, "bpe_train");
    goto done;
oom:
    st = ts_fail(TS_ERR_NOMEM, "out of memory in BPE training");
done:
    trainer_free(&t);
    if (st) bpe_free(tok);
    return st;
}

/* ==== encode / decode ========================================================= */

//! [bpe-encode-chunk]
/* Encode one pre-token chunk: start from its bytes, then keep merging the
 * adjacent pair that was learned earliest (lowest rank). */
static void encode_chunk(const bpe_tokenizer *tok, const unsigned char *s, int n, int *ids, int *n_out) {
    for (int i = 0; i < n; i++) ids[i] = tok->byte_id[s[i]];
    while (n >= 2) {
        int64_t best = INT64_MAX;
        for (int i = 0; i + 1 < n; i++) {
            const int64_t *r = pairmap_find(&tok->rank, pair_key(ids[i], ids[i + 1]));
            if (r && *r < best) best = *r;
        }
        if (best == INT64_MAX) break;
        const bpe_merge *m = &tok->merges[best - 1]; /* the map stores rank + 1 */
        int merged = bpe_apply_merge(ids, n, m->left, m->right, m->id);
        if (merged >= n || merged < 1) break; /* a broken merge function must not loop forever */
        n = merged;
    }
    *n_out = n;
}
//! [bpe-encode-chunk]

ts_status bpe_encode(const bpe_tokenizer *tok, const void *text, size_t len, int **ids_out, size_t *n_out) {
    *ids_out = NULL;
    *n_out = 0;
    const unsigned char *s = text;
    int_vec out = {0};
    special_set ss = {0};
    ss.tok = tok;
    ss.first = tok->special_first;
    if (ivec_reserve(&out, len / 2 + 16)) goto oom;
    for (size_t pos = 0; pos < len;) {
        int sid;
        size_t slen, seg_end = next_special(&ss, s, len, pos, &sid, &slen);
        while (pos < seg_end) {
            size_t end = bpe_next_chunk(s, seg_end, pos);
            if (end - pos > INT_MAX / 2) {
                free(out.data);
                return ts_fail(TS_ERR_RANGE, "a single pre-token chunk of %zu bytes is too long to encode", end - pos);
            }
            if (ivec_reserve(&out, end - pos)) goto oom;
            int n;
            encode_chunk(tok, s + pos, (int)(end - pos), out.data + out.len, &n);
            out.len += (size_t)n;
            pos = end;
        }
        if (sid >= 0) {
            if (ivec_reserve(&out, 1)) goto oom;
            out.data[out.len++] = sid;
            pos += slen;
        }
    }
    *ids_out = out.data;
    *n_out = out.len;
    return TS_OK;
oom:
    free(out.data);
    return ts_fail(TS_ERR_NOMEM, "out of memory encoding %zu bytes", len);
}

ts_status bpe_decode(const bpe_tokenizer *tok, const int *ids, size_t n, char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->vocab_size)
            return ts_fail(TS_ERR_RANGE, "token id %d (position %zu) is out of range: expected 0 to %d", ids[i], i,
                           tok->vocab_size - 1);
        total += tok->tok_len[ids[i]];
    }
    char *out = ts_malloc(total + 1, "decoded text");
    if (!out) return TS_ERR_NOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + at, tok->tok_bytes + tok->tok_off[ids[i]], tok->tok_len[ids[i]]);
        at += tok->tok_len[ids[i]];
    }
    out[at] = '\0';
    *text = out;
    if (len) *len = at;
    return TS_OK;
}

/* ==== tokenizer.json ============================================================= */

//! [bpe-byte-unicode]
/* GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the other
 * 68 (controls, space, DEL, ...) are shifted to code points 256..323, so every
 * token is a printable string with no spaces. */
static void byte_unicode_tables(int byte_to_cp[256], int cp_to_byte[324]) {
    int n = 0;
    for (int c = 0; c < 324; c++) cp_to_byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp[b] = printable ? b : 256 + n++;
        cp_to_byte[byte_to_cp[b]] = b;
    }
}
//! [bpe-byte-unicode]

char *bpe_bytes_to_unicode(const unsigned char *bytes, size_t len) {
    int b2c[256], c2b[324];
    byte_unicode_tables(b2c, c2b);
    char *out = ts_malloc(2 * len + 1, "token text");
    if (!out) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        int cp = b2c[bytes[i]];
        if (cp < 0x80) {
            out[j++] = (char)cp;
        } else { /* all code points here are < 0x800: two UTF-8 bytes */
            out[j++] = (char)(0xC0 | (cp >> 6));
            out[j++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[j] = '\0';
    return out;
}

/* Inverse of bpe_bytes_to_unicode(); -1 if s is not such a spelling. */
static long unicode_to_bytes(const char *s, unsigned char *out, size_t cap) {
    int b2c[256], c2b[324];
    byte_unicode_tables(b2c, c2b);
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int cp;
        if (p[0] < 0x80) {
            cp = p[0];
            p += 1;
        } else if ((p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) {
            cp = ((p[0] & 0x1F) << 6) | (p[1] & 0x3F);
            p += 2;
        } else {
            return -1;
        }
        if (cp >= 324 || c2b[cp] < 0 || j >= cap) return -1;
        out[j++] = (unsigned char)c2b[cp];
    }
    return (long)j;
}

static cJSON *add_bool(cJSON *o, const char *k, int v) { return cJSON_AddBoolToObject(o, k, v); }

static cJSON *byte_level(int add_prefix_space) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    add_bool(o, "add_prefix_space", add_prefix_space);
    add_bool(o, "trim_offsets", 1);
    add_bool(o, "use_regex", 1);
    return o;
}

ts_status bpe_to_json(const bpe_tokenizer *tok, char **json) {
    *json = NULL;
    int ok = 1;
    cJSON *root = cJSON_CreateObject();
    ok &= cJSON_AddStringToObject(root, "version", "1.0") != NULL;
    ok &= cJSON_AddNullToObject(root, "truncation") != NULL;
    ok &= cJSON_AddNullToObject(root, "padding") != NULL;
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int k = 0; added && k < tok->n_added; k++) {
        int id = tok->added_ids[k];
        cJSON *a = cJSON_CreateObject();
        char *content = ts_malloc(tok->tok_len[id] + 1, "token");
        if (!a || !content) {
            cJSON_Delete(a);
            free(content);
            ok = 0;
            break;
        }
        memcpy(content, tok->tok_bytes + tok->tok_off[id], tok->tok_len[id]);
        content[tok->tok_len[id]] = '\0';
        cJSON_AddNumberToObject(a, "id", id);
        cJSON_AddStringToObject(a, "content", content);
        add_bool(a, "single_word", 0);
        add_bool(a, "lstrip", 0);
        add_bool(a, "rstrip", 0);
        add_bool(a, "normalized", 0);
        add_bool(a, "special", 1);
        free(content);
        cJSON_AddItemToArray(added, a);
    }
    ok &= added != NULL;
    ok &= cJSON_AddNullToObject(root, "normalizer") != NULL;
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    if (pre) {
        cJSON_AddStringToObject(pre, "type", "Sequence");
        cJSON *list = cJSON_AddArrayToObject(pre, "pretokenizers");
        cJSON *digits = cJSON_CreateObject();
        cJSON_AddStringToObject(digits, "type", "Digits");
        add_bool(digits, "individual_digits", 1);
        cJSON_AddItemToArray(list, digits);
        cJSON_AddItemToArray(list, byte_level(0));
    }
    ok &= pre != NULL;
    ok &= cJSON_AddNullToObject(root, "post_processor") != NULL;
    cJSON *dec = byte_level(1);
    ok &= dec != NULL;
    cJSON_AddItemToObject(root, "decoder", dec);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    if (model) {
        cJSON_AddStringToObject(model, "type", "BPE");
        cJSON_AddNullToObject(model, "dropout");
        cJSON_AddNullToObject(model, "unk_token");
        cJSON_AddNullToObject(model, "continuing_subword_prefix");
        cJSON_AddNullToObject(model, "end_of_word_suffix");
        add_bool(model, "fuse_unk", 0);
        add_bool(model, "byte_fallback", 0);
        add_bool(model, "ignore_merges", 0);
        cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
        for (int id = 0; vocab && id < tok->vocab_size && ok; id++) {
            if (tok->is_special[id]) continue;
            char *key = bpe_bytes_to_unicode(tok->tok_bytes + tok->tok_off[id], tok->tok_len[id]);
            ok &= key && cJSON_AddNumberToObject(vocab, key, id) != NULL;
            free(key);
        }
        cJSON *merges = cJSON_AddArrayToObject(model, "merges");
        for (int r = 0; merges && r < tok->n_merges && ok; r++) {
            const bpe_merge *m = &tok->merges[r];
            char *l = bpe_bytes_to_unicode(tok->tok_bytes + tok->tok_off[m->left], tok->tok_len[m->left]);
            char *rt = bpe_bytes_to_unicode(tok->tok_bytes + tok->tok_off[m->right], tok->tok_len[m->right]);
            char *both = l && rt ? malloc(strlen(l) + strlen(rt) + 2) : NULL;
            if (both) {
                sprintf(both, "%s %s", l, rt);
                ok &= cJSON_AddItemToArray(merges, cJSON_CreateString(both));
            } else {
                ok = 0;
            }
            free(l);
            free(rt);
            free(both);
        }
        ok &= vocab && merges;
    }
    ok &= model != NULL;
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return ts_fail(TS_ERR_NOMEM, "out of memory writing tokenizer.json");
    /* cJSON_Print's buffer is for cJSON_free; hand the caller a malloc'd copy with a final newline. */
    size_t n = strlen(text);
    *json = malloc(n + 2);
    if (*json) {
        memcpy(*json, text, n);
        (*json)[n] = '\n';
        (*json)[n + 1] = '\0';
    }
    cJSON_free(text);
    return *json ? TS_OK : ts_fail(TS_ERR_NOMEM, "out of memory writing tokenizer.json");
}

ts_status bpe_save(const bpe_tokenizer *tok, const char *path) {
    char *json;
    ts_status st = bpe_to_json(tok, &json);
    if (st) return st;
    st = ts_write_file_atomic(path, json, strlen(json));
    free(json);
    return st;
}

/* ---- loading ------------------------------------------------------------------ */

typedef struct {
    int id;
    unsigned char *bytes;
    size_t len;
    int special;
} load_entry;

static int cmp_entry_id(const void *a, const void *b) {
    int x = ((const load_entry *)a)->id, y = ((const load_entry *)b)->id;
    return (x > y) - (x < y);
}

static int get_id(const cJSON *item, int *id) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0 && v < BPE_MAX_VOCAB) || v != (double)(int)v) return 0;
    *id = (int)v;
    return 1;
}

/* Checks that a field is absent, null or false (an option tinyseek does not implement). */
static int unset(const cJSON *obj, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
    return !x || cJSON_IsNull(x) || cJSON_IsFalse(x);
}

static ts_status check_pre_tokenizer(const cJSON *root, const char *name) {
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *want = "expected a Sequence of Digits(individual_digits=true) and ByteLevel(add_prefix_space=false), "
                       "the only pre-tokenizer tinyseek implements";
    if (!cJSON_IsObject(pre)) return ts_fail(TS_ERR_FORMAT, "%s: pre_tokenizer: %s", name, want);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "Sequence") != 0 || !cJSON_IsArray(list) ||
        cJSON_GetArraySize(list) != 2)
        return ts_fail(TS_ERR_FORMAT, "%s: pre_tokenizer: %s", name, want);
    const cJSON *d = cJSON_GetArrayItem(list, 0), *b = cJSON_GetArrayItem(list, 1);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(d, "type"), *bt = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "Digits") != 0 ||
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "individual_digits")))
        return ts_fail(TS_ERR_FORMAT, "%s: pre_tokenizer.pretokenizers[0]: %s", name, want);
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(b, "use_regex");
    if (!cJSON_IsString(bt) || strcmp(bt->valuestring, "ByteLevel") != 0 || !unset(b, "add_prefix_space") ||
        (regex && !cJSON_IsTrue(regex)))
        return ts_fail(TS_ERR_FORMAT, "%s: pre_tokenizer.pretokenizers[1]: %s", name, want);
    return TS_OK;
}

/* A string from the file, made safe to quote in a one-line message: control
 * bytes escaped, at most 40 bytes shown. buf needs SHOWN_MAX bytes. */
#define SHOWN_MAX 200
static const char *shown(const char *str, char *buf) {
    size_t j = 0;
    for (size_t i = 0; str[i]; i++) {
        if (i == 40) {
            memcpy(buf + j, "...", 4);
            return buf;
        }
        unsigned char c = (unsigned char)str[i];
        if (c < 0x20 || c == 0x7f) j += (size_t)snprintf(buf + j, SHOWN_MAX - j, "\\x%02x", c);
        else buf[j++] = (char)c;
    }
    buf[j] = '\0';
    return buf;
}

static ts_status parse_merge(const cJSON *item, int r, const vocab_builder *vb, const char *name, bpe_merge *m,
                             unsigned char *buf, size_t cap) {
    const char *parts[2];
    char *copy = NULL, sa[SHOWN_MAX], sb[SHOWN_MAX];
    if (cJSON_IsString(item)) { /* "left right" */
        copy = strdup(item->valuestring);
        if (!copy) return ts_fail(TS_ERR_NOMEM, "out of memory");
        char *space = strchr(copy, ' ');
        if (!space || strchr(space + 1, ' ') || space == copy || !space[1]) {
            free(copy);
            return ts_fail(TS_ERR_FORMAT, "%s: model.merges[%d]: expected \"LEFT RIGHT\" (two tokens, one space), got \"%s\"",
                           name, r, shown(item->valuestring, sa));
        }
        *space = '\0';
        parts[0] = copy;
        parts[1] = space + 1;
    } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 2 && cJSON_IsString(cJSON_GetArrayItem(item, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(item, 1))) { /* ["left", "right"] */
        parts[0] = cJSON_GetArrayItem(item, 0)->valuestring;
        parts[1] = cJSON_GetArrayItem(item, 1)->valuestring;
    } else {
        return ts_fail(TS_ERR_FORMAT, "%s: model.merges[%d]: expected a string \"LEFT RIGHT\" or a pair of strings", name, r);
    }
    int ids[2];
    size_t total = 0;
    ts_status st = TS_OK;
    for (int k = 0; k < 2 && !st; k++) {
        long n = unicode_to_bytes(parts[k], buf + total, cap - total);
        long e = n > 0 ? strmap_lookup((strmap *)&vb->index, buf + total, (size_t)n, 0) : -1;
        if (e < 0)
            st = ts_fail(TS_ERR_FORMAT, "%s: model.merges[%d] names unknown token \"%s\" (not in model.vocab)", name, r,
                         shown(parts[k], sa));
        else {
            ids[k] = (int)vb->index.val[e];
            total += (size_t)n;
        }
    }
    if (!st) {
        long e = strmap_lookup((strmap *)&vb->index, buf, total, 0);
        if (e < 0)
            st = ts_fail(TS_ERR_FORMAT, "%s: model.merges[%d]: the merged token \"%s%s\" is not in model.vocab", name,
                         r, shown(parts[0], sa), shown(parts[1], sb));
        else
            *m = (bpe_merge){ids[0], ids[1], (int)vb->index.val[e]};
    }
    free(copy);
    return st;
}

ts_status bpe_from_json(bpe_tokenizer *tok, const char *json, size_t len, const char *name) {
    memset(tok, 0, sizeof *tok);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : len;
        return ts_fail(TS_ERR_FORMAT, "%s: not valid JSON (error near byte %zu of %zu; truncated file?)", name, at, len);
    }
    ts_status st = TS_OK;
    load_entry *entries = NULL;
    size_t n_entries = 0;
    vocab_builder vb = {0};
    unsigned char *buf = NULL;
    char sa[SHOWN_MAX];
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (!cJSON_IsObject(root)) {
        st = ts_fail(TS_ERR_FORMAT, "%s: expected a JSON object at the top level", name);
    } else if (!cJSON_IsObject(model)) {
        st = ts_fail(TS_ERR_FORMAT, "%s: model: expected an object", name);
    } else if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0) {
        st = ts_fail(TS_ERR_FORMAT, "%s: model.type: expected \"BPE\"", name);
    } else if (!cJSON_IsObject(vocab)) {
        st = ts_fail(TS_ERR_FORMAT, "%s: model.vocab: expected an object of token -> id", name);
    } else if (!cJSON_IsArray(merges)) {
        st = ts_fail(TS_ERR_FORMAT, "%s: model.merges: expected an array", name);
    } else if (!cJSON_IsArray(added)) {
        st = ts_fail(TS_ERR_FORMAT, "%s: added_tokens: expected an array", name);
    } else if (norm && !cJSON_IsNull(norm)) {
        st = ts_fail(TS_ERR_FORMAT, "%s: normalizer: expected null (tinyseek applies no normalizer)", name);
    } else if (!unset(model, "continuing_subword_prefix") || !unset(model, "end_of_word_suffix") ||
               !unset(model, "byte_fallback")) {
        st = ts_fail(TS_ERR_FORMAT,
                     "%s: model: continuing_subword_prefix, end_of_word_suffix and byte_fallback must be null/false", name);
    }
    if (!st) st = check_pre_tokenizer(root, name);
    if (st) goto done;

    /* Collect (id, bytes) for every token, then check the ids are 0..V-1, each once. */
    size_t n_vocab = (size_t)cJSON_GetArraySize(vocab), n_added = (size_t)cJSON_GetArraySize(added);
    entries = calloc(n_vocab + n_added + 1, sizeof *entries);
    buf = malloc(len + 1);
    if (!entries || !buf) goto oom;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        load_entry *e = &entries[n_entries];
        if (!get_id(v, &e->id)) {
            st = ts_fail(TS_ERR_FORMAT, "%s: model.vocab[\"%s\"]: expected an integer id from 0 to %d", name, shown(v->string, sa),
                         BPE_MAX_VOCAB - 1);
            goto done;
        }
        long n = unicode_to_bytes(v->string, buf, len);
        if (n <= 0) {
            st = ts_fail(TS_ERR_FORMAT, "%s: model.vocab: \"%s\" is not a byte-level token (GPT-2 byte-to-unicode spelling)",
                         name, shown(v->string, sa));
            goto done;
        }
        e->len = (size_t)n;
        if (!(e->bytes = malloc(e->len))) goto oom;
        memcpy(e->bytes, buf, e->len);
        n_entries++;
    }
    for (int k = 0; k < (int)n_added; k++) {
        const cJSON *a = cJSON_GetArrayItem(added, k);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        load_entry *e = &entries[n_entries];
        if (!cJSON_IsObject(a) || !get_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &e->id)) {
            st = ts_fail(TS_ERR_FORMAT, "%s: added_tokens[%d].id: expected an integer id from 0 to %d", name, k,
                         BPE_MAX_VOCAB - 1);
            goto done;
        }
        if (!cJSON_IsString(content) || !content->valuestring[0]) {
            st = ts_fail(TS_ERR_FORMAT, "%s: added_tokens[%d].content: expected a non-empty string", name, k);
            goto done;
        }
        e->len = strlen(content->valuestring);
        if (!(e->bytes = malloc(e->len))) goto oom;
        memcpy(e->bytes, content->valuestring, e->len);
        e->special = 1;
        n_entries++;
    }
    qsort(entries, n_entries, sizeof *entries, cmp_entry_id);
    for (size_t i = 1; i < n_entries; i++)
        if (entries[i].id == entries[i - 1].id) {
            st = ts_fail(TS_ERR_FORMAT, "%s: model.vocab/added_tokens: id %d is used twice", name, entries[i].id);
            goto done;
        }
    for (size_t i = 0; i < n_entries; i++) {
        if (entries[i].id != (int)i) {
            st = ts_fail(TS_ERR_FORMAT, "%s: model.vocab/added_tokens: id %d is missing (ids must be 0 to %zu)", name,
                         (int)i, n_entries - 1);
            goto done;
        }
        if (!entries[i].special && strmap_lookup(&vb.index, entries[i].bytes, entries[i].len, 0) >= 0) {
            st = ts_fail(TS_ERR_FORMAT, "%s: model.vocab: token id %d repeats another token's bytes", name, (int)i);
            goto done;
        }
        if (vb_add(&vb, entries[i].bytes, entries[i].len, entries[i].special) < 0) goto oom;
    }
    for (int b = 0; b < 256; b++) {
        unsigned char byte = (unsigned char)b;
        long e = strmap_lookup(&vb.index, &byte, 1, 0);
        if (e < 0) {
            st = ts_fail(TS_ERR_FORMAT, "%s: model.vocab: the byte token for 0x%02x is missing (a byte-level BPE needs all 256)",
                         name, b);
            goto done;
        }
        tok->byte_id[b] = (int)vb.index.val[e];
    }

    /* Merges, in rank order. */
    tok->n_merges = cJSON_GetArraySize(merges);
    tok->merges = malloc((size_t)(tok->n_merges ? tok->n_merges : 1) * sizeof *tok->merges);
    if (!tok->merges) goto oom;
    int r = 0;
    for (const cJSON *m = merges->child; m; m = m->next, r++)
        if ((st = parse_merge(m, r, &vb, name, &tok->merges[r], buf, len))) goto done;
    st = vb_finish(&vb, tok, name);
    goto done;
oom:
    st = ts_fail(TS_ERR_NOMEM, "%s: out of memory loading the tokenizer", name);
done:
    for (size_t i = 0; i < n_entries; i++) free(entries[i].bytes);
    free(entries);
    free(buf);
    vb_free(&vb);
    cJSON_Delete(root);
    if (st) bpe_free(tok);
    return st;
}

ts_status bpe_load(bpe_tokenizer *tok, const char *path) {
    memset(tok, 0, sizeof *tok);
    char *json;
    size_t len;
    ts_status st = ts_read_file(path, &json, &len);
    if (st) return st;
    st = bpe_from_json(tok, json, len, path);
    free(json);
    return st;
}

ts_status bpe_write_merge_log(const bpe_tokenizer *tok, const char *path) {
    if (!tok->merge_counts)
        return ts_fail(TS_ERR_ARG, "%s: the merge log needs a tokenizer fresh from training", path);
    ts_atomic_file af;
    ts_status st = ts_atomic_open(&af, path);
    if (st) return st;
    fprintf(af.f, "merge,left,right,count,token_id,token\n");
    for (int r = 0; r < tok->n_merges; r++) {
        const bpe_merge *m = &tok->merges[r];
        char *text = bpe_bytes_to_unicode(tok->tok_bytes + tok->tok_off[m->id], tok->tok_len[m->id]);
        if (!text) {
            ts_atomic_abort(&af);
            return TS_ERR_NOMEM;
        }
        fprintf(af.f, "%d,%d,%d,%lld,%d,\"", r, m->left, m->right, (long long)tok->merge_counts[r], m->id);
        for (const char *c = text; *c; c++) {
            if (*c == '"') fputc('"', af.f); /* CSV: a quote inside quotes is doubled */
            fputc(*c, af.f);
        }
        fputs("\"\n", af.f);
        free(text);
    }
    return ts_atomic_commit(&af);
}

/**
 * @file sft_batch.c
 * @brief JSONL problems and pairs, their templated tokens, and SFT's padded batches.
 */
#include "data/sft_batch.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h" /* TS_IGNORE */
#include "data/answer.h"
#include "io/fileio.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ts_malloc(n, "JSONL text");
    if (d) memcpy(d, s, n);
    return d;
}

static void example_free(ts_example *e) {
    free(e->prompt);
    free(e->response);
    free(e->answer);
    memset(e, 0, sizeof *e);
}

void ts_examples_free(ts_examples *set) {
    for (int i = 0; set->ex && i < set->n; i++) example_free(&set->ex[i]);
    free(set->ex);
    memset(set, 0, sizeof *set);
}

/* One line's object into @p e; TS_ERR_FORMAT naming path:line and the field. */
static ts_status parse_line(ts_example *e, const char *line, const char *path, int lineno, int need_response,
                            int need_answer) {
    memset(e, 0, sizeof *e);
    cJSON *o = cJSON_Parse(line);
    ts_status st = TS_OK;
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ts_fail(TS_ERR_FORMAT, "%s:%d: not a JSON object", path, lineno);
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    const cJSON *response = cJSON_GetObjectItemCaseSensitive(o, "response");
    const cJSON *answer = cJSON_GetObjectItemCaseSensitive(o, "answer");
    const cJSON *difficulty = cJSON_GetObjectItemCaseSensitive(o, "difficulty");
    char num[64];
    if (!cJSON_IsString(prompt)) st = ts_fail(TS_ERR_FORMAT, "%s:%d: field \"prompt\": expected a string", path, lineno);
    else if (response && !cJSON_IsString(response))
        st = ts_fail(TS_ERR_FORMAT, "%s:%d: field \"response\": expected a string", path, lineno);
    else if (need_response && !response)
        st = ts_fail(TS_ERR_FORMAT, "%s:%d: field \"response\" is missing (an SFT pair needs one)", path, lineno);
    else if (answer && !cJSON_IsString(answer) && !cJSON_IsNumber(answer))
        st = ts_fail(TS_ERR_FORMAT, "%s:%d: field \"answer\": expected a string or a number", path, lineno);
    else if (difficulty && (!cJSON_IsNumber(difficulty) || difficulty->valuedouble != (double)difficulty->valueint ||
                            difficulty->valueint < 0))
        st = ts_fail(TS_ERR_FORMAT, "%s:%d: field \"difficulty\": expected an integer >= 0", path, lineno);
    if (!st) {
        e->prompt = dup_str(prompt->valuestring);
        if (response) e->response = dup_str(response->valuestring);
        if (answer && cJSON_IsString(answer)) e->answer = dup_str(answer->valuestring);
        else if (answer) {
            snprintf(num, sizeof num, "%.17g", answer->valuedouble);
            e->answer = dup_str(num);
        } else if (response && ts_answer_extract(response->valuestring, num, sizeof num))
            e->answer = dup_str(num); // today's SFT files carry the answer only in the response's tag
        e->difficulty = difficulty ? difficulty->valueint : 0;
        if (!e->prompt || (response && !e->response) || ((answer || e->answer) && !e->answer)) st = TS_ERR_NOMEM;
        else if (need_answer && !e->answer)
            st = ts_fail(TS_ERR_FORMAT, "%s:%d: field \"answer\" is missing (and no <answer> tag in a response)", path,
                         lineno);
    }
    cJSON_Delete(o);
    if (st) example_free(e);
    return st;
}

ts_status ts_examples_load(ts_examples *set, const char *path, int need_response, int need_answer) {
    memset(set, 0, sizeof *set);
    char *text = NULL;
    size_t len = 0;
    ts_status st = ts_read_file(path, &text, &len);
    if (st) return st;
    int cap = 0, lineno = 0;
    for (char *line = text, *next; line && *line && !st; line = next) {
        lineno++;
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) continue;
        if (set->n == cap) {
            cap = cap ? 2 * cap : 256;
            ts_example *grown = realloc(set->ex, (size_t)cap * sizeof *grown);
            if (!grown) {
                st = ts_fail(TS_ERR_NOMEM, "%s: out of memory at line %d", path, lineno);
                break;
            }
            set->ex = grown;
        }
        if (!(st = parse_line(&set->ex[set->n], p, path, lineno, need_response, need_answer))) set->n++;
    }
    free(text);
    if (!st && set->n == 0) st = ts_fail(TS_ERR_FORMAT, "%s: no examples (an empty file?)", path);
    if (st) ts_examples_free(set);
    return st;
}

void ts_sft_data_free(ts_sft_data *d) {
    for (int i = 0; d->seq && i < d->n; i++) free(d->seq[i].ids);
    free(d->seq);
    memset(d, 0, sizeof *d);
}

ts_status ts_sft_data_build(ts_sft_data *d, const bpe_tokenizer *tok, ts_template t, const ts_examples *set,
                            int max_len, const char *source) {
    memset(d, 0, sizeof *d);
    d->seq = ts_calloc((size_t)(set->n ? set->n : 1), sizeof *d->seq, "SFT pairs");
    if (!d->seq) return TS_ERR_NOMEM;
    d->pad_id = bpe_special_id(tok, BPE_PAD);
    ts_status st = TS_OK;
    for (int i = 0; i < set->n && !st; i++) {
        const ts_example *e = &set->ex[i];
        if (!e->response) {
            st = ts_fail(TS_ERR_FORMAT, "%s: example %d has no response", source, i + 1);
            break;
        }
        ts_sft_seq *s = &d->seq[i];
        if ((st = ts_chat_encode(tok, t, e->prompt, e->response, &s->ids, &s->n, &s->n_prompt))) break;
        d->n = i + 1;
        if (s->n > max_len)
            st = ts_fail(TS_ERR_RANGE, "%s: example %d is %d tokens with the %s template, more than the model's %d",
                         source, i + 1, s->n, ts_template_name(t), max_len);
        else if (s->n - s->n_prompt < 1)
            st = ts_fail(TS_ERR_FORMAT, "%s: example %d has an empty response", source, i + 1);
        if (s->n > d->max_len) d->max_len = s->n;
    }
    if (st) ts_sft_data_free(d);
    return st;
}

//! [sft-row]
void ts_sft_fill_row(const ts_sft_seq *s, int T, int pad_id, int *tokens, int *targets) {
    for (int t = 0; t < T; t++) {
        int next = t + 1; // the position whose token t predicts
        tokens[t] = t < s->n - 1 ? s->ids[t] : pad_id;
        targets[t] = next < s->n && next >= s->n_prompt ? s->ids[next] : TS_IGNORE; // response tokens only
    }
}
//! [sft-row]

/* The source's working data: the pairs and the current epoch's permutation,
 * which is a function of state.rng[0] alone (rebuilt when that changes). */
typedef struct {
    const ts_sft_data *d;
    int *perm;
    ts_rng perm_from; /* the state perm was drawn from */
    int have_perm;
} sft_ctx;

/* Fisher–Yates with a copy of @p from; returns the RNG state after the draw. */
static ts_rng shuffle(int *perm, int n, ts_rng from) {
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ts_rng_below(&from, (uint64_t)i + 1);
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    return from;
}

static ts_status sft_next(ts_batch_source *src, ts_batch *out) {
    sft_ctx *x = src->ctx;
    const ts_sft_data *d = x->d;
    int B = src->B;
    if (out->cap_B < B || out->cap_T < src->T) return ts_fail(TS_ERR_ARG, "sft: batch buffer smaller than %d x %d", B, src->T);
    int rows[4096], *pick = B > 4096 ? malloc((size_t)B * sizeof *pick) : rows;
    if (!pick) return ts_fail(TS_ERR_NOMEM, "sft: out of memory for %d rows", B);
    int T = 1;
    for (int b = 0; b < B; b++) {
        if (!x->have_perm || memcmp(&x->perm_from, &src->state.rng[0], sizeof(ts_rng)) != 0) {
            shuffle(x->perm, d->n, src->state.rng[0]);
            x->perm_from = src->state.rng[0];
            x->have_perm = 1;
        }
        pick[b] = x->perm[src->state.pos];
        if (d->seq[pick[b]].n - 1 > T) T = d->seq[pick[b]].n - 1;
        if (++src->state.pos == d->n) { // epoch done: the next permutation comes from the advanced stream
            src->state.pos = 0;
            src->state.rng[0] = shuffle(x->perm, d->n, src->state.rng[0]);
        }
    }
    out->B = B;
    out->T = T; // padded to the longest pair of this batch
    for (int b = 0; b < B; b++)
        ts_sft_fill_row(&d->seq[pick[b]], T, d->pad_id, out->tokens + (size_t)b * T, out->targets + (size_t)b * T);
    if (pick != rows) free(pick);
    return TS_OK;
}

ts_status ts_sft_source(ts_batch_source *src, const ts_sft_data *d, int B, uint64_t seed) {
    memset(src, 0, sizeof *src);
    if (B <= 0) return ts_fail(TS_ERR_ARG, "sft: batch size %d must be positive", B);
    if (d->n <= 0 || d->max_len < 2) return ts_fail(TS_ERR_ARG, "sft: no pairs to train on");
    sft_ctx *x = ts_calloc(1, sizeof *x, "SFT source");
    if (!x) return TS_ERR_NOMEM;
    x->d = d;
    x->perm = ts_malloc((size_t)d->n * sizeof(int), "SFT permutation");
    if (!x->perm) {
        free(x);
        return TS_ERR_NOMEM;
    }
    src->next = sft_next;
    src->ctx = x;
    src->B = B;
    src->T = d->max_len - 1; // inputs: every token but the last
    src->state.n_rng = 1;
    ts_rng_seed(&src->state.rng[0], seed, TS_STREAM_DATA);
    return TS_OK;
}

void ts_sft_source_free(ts_batch_source *src) {
    sft_ctx *x = src->ctx;
    if (x) free(x->perm);
    free(x);
    memset(src, 0, sizeof *src);
}

/**
 * @file evaluate.c
 * @brief Batched generation through the KV cache, scoring, and the summary tables.
 */
#include "train/evaluate.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "model/sampling.h"

ts_eval_opts ts_eval_opts_default(void) {
    ts_eval_opts o;
    memset(&o, 0, sizeof o);
    o.tmpl = TS_TEMPLATE_R1;
    o.greedy = 1;
    o.n_samples = 8;
    o.temperature = 1.0f;
    o.max_new = 64;
    o.batch = 64;
    o.seed = 1;
    return o;
}

/* Everything one pass (greedy, or k samples) needs. */
typedef struct {
    ts_model *m;
    const bpe_tokenizer *tok;
    const ts_examples *problems;
    const ts_eval_opts *o;
    int k;              /* sequences per problem */
    ts_sampler sampler; /* temperature 0 = greedy */
    int per_group;      /* problems decoded together */
    int B;              /* per_group · k sequences */
    ts_gen_batch gen;   /* the cache, logits, generated ids and streams of B sequences */
    int **ids;          /* (per_group) the group's prompts, tokenized */
    int *ids_len;       /* (per_group) their lengths */
    char **text;        /* (B) decoded responses */
    char (*answer)[64]; /* (B) parsed answers, for the majority vote */
} pass;

static void pass_free(pass *p) {
    ts_gen_free(&p->gen);
    for (int b = 0; p->text && b < p->B; b++) free(p->text[b]);
    free(p->ids);
    free(p->ids_len);
    free(p->text);
    free(p->answer);
}

//! [eval-generate]
/* Render and tokenize each problem of the group, seed each of its k sequences'
 * own stream from (seed, problem, sample), then sample them all at once
 * through the batched KV cache (model/sampling.c): each prompt is prefilled
 * once and its cache copied to its k sequences, which stop at <|eos|>
 * (dropped), </answer> (kept) or max_new tokens. */
static ts_status generate_group(pass *p, int first, int count) {
    ts_status st = TS_OK;
    int **ids = p->ids, *lens = p->ids_len;
    for (int i = 0; i < count; i++) ids[i] = NULL;
    for (int i = 0; i < count && !st; i++) {
        const ts_example *e = &p->problems->ex[first + i];
        int n_prompt = 0;
        if ((st = ts_chat_encode(p->tok, p->o->tmpl, e->prompt, NULL, &ids[i], &lens[i], &n_prompt))) break;
        if (lens[i] + 1 > p->gen.max_T)
            st = ts_fail(TS_ERR_RANGE, "evaluate: problem %d's prompt is %d tokens, the context holds %d", first + i + 1,
                         lens[i], p->gen.max_T);
        for (int j = 0; j < p->k; j++) {
            uint64_t stream = ((((uint64_t)(first + i)) << 24) | (uint64_t)j) * 8 + TS_STREAM_SAMPLE;
            ts_rng_seed(&p->gen.rng[i * p->k + j], p->o->seed, stream); // this sequence's own stream
        }
    }
    ts_gen_opts go = {.sampler = p->sampler,
                      .max_new = p->o->max_new,
                      .eos_id = bpe_special_id(p->tok, BPE_EOS),
                      .keep_eos = 0,
                      .stop_id = bpe_special_id(p->tok, BPE_ANSWER_END),
                      .n_valid = p->tok->vocab_size};
    if (!st) st = ts_gen_run(&p->gen, p->m, (const int *const *)ids, lens, count, p->k, &go);
    for (int i = 0; i < count; i++) {
        free(ids[i]);
        ids[i] = NULL;
    }
    return st;
}
//! [eval-generate]

/* Decode, score and tally the group's sequences into out[], calling fn for samples. */
static ts_status score_group(pass *p, int first, int count, int sampled, ts_eval_problem *out, ts_eval_sample_fn fn,
                             void *ctx) {
    const char *prefix = ts_chat_response_prefix(p->o->tmpl);
    size_t plen = strlen(prefix);
    for (int i = 0; i < count; i++) {
        const ts_example *e = &p->problems->ex[first + i];
        ts_eval_problem *r = &out[first + i];
        const char *votes[4096];
        for (int j = 0; j < p->k; j++) {
            int b = i * p->k + j;
            char *text = NULL;
            size_t n = 0;
            ts_status st = bpe_decode(p->tok, p->gen.gen + (size_t)b * p->gen.max_new, (size_t)p->gen.len[b], &text, &n);
            if (st) return st;
            free(p->text[b]);
            p->text[b] = ts_malloc(plen + n + 1, "response text");
            if (!p->text[b]) {
                free(text);
                return TS_ERR_NOMEM;
            }
            memcpy(p->text[b], prefix, plen);
            memcpy(p->text[b] + plen, text, n + 1);
            free(text);
            ts_answer_score s = ts_answer_score_of(p->text[b], e->answer);
            if (!sampled) {
                r->greedy_correct = s.correct;
                r->greedy_format = s.format == TS_FORMAT_OK;
                r->greedy_len = p->gen.len[b];
                continue;
            }
            r->n++;
            r->correct += s.correct;
            r->clean += s.format == TS_FORMAT_OK;
            r->len_sum += p->gen.len[b];
            if (!ts_answer_extract(p->text[b], p->answer[b], sizeof p->answer[b])) p->answer[b][0] = '\0';
            if (j < 4096) votes[j] = p->answer[b];
            if (fn && (st = fn(ctx, first + i, j, p->text[b], &s))) return st;
        }
        if (sampled) {
            int w = ts_majority_vote(votes, p->k < 4096 ? p->k : 4096);
            r->maj_correct = w >= 0 && ts_answer_matches(votes[w], e->answer);
        }
    }
    return TS_OK;
}

static ts_status run_pass(ts_model *m, const bpe_tokenizer *tok, const ts_examples *problems, const ts_eval_opts *o,
                          int k, float temperature, ts_eval_problem *out, ts_eval_sample_fn fn, void *ctx) {
    pass p;
    memset(&p, 0, sizeof p);
    if (problems->n == 0) return TS_OK;
    p.m = m;
    p.tok = tok;
    p.problems = problems;
    p.o = o;
    p.k = k;
    p.sampler = (ts_sampler){temperature, 0, 1.0f};
    p.per_group = o->batch / k > 0 ? o->batch / k : 1;
    if (p.per_group > problems->n) p.per_group = problems->n;
    p.B = p.per_group * k;
    int longest = 0;
    for (int i = 0; i < problems->n; i++) {
        int *ids = NULL, n = 0, np = 0;
        ts_status st = ts_chat_encode(tok, o->tmpl, problems->ex[i].prompt, NULL, &ids, &n, &np);
        free(ids);
        if (st) return st;
        if (n > longest) longest = n;
    }
    int max_T = longest + o->max_new + 1;
    if (max_T > m->cfg.max_position_embeddings) max_T = m->cfg.max_position_embeddings;
    ts_status st = ts_gen_create(&p.gen, m, p.B, max_T, o->max_new);
    if (st) return st;
    p.ids = ts_calloc((size_t)p.per_group, sizeof(int *), "prompt tokens");
    p.ids_len = ts_calloc((size_t)p.per_group, sizeof(int), "prompt lengths");
    p.text = ts_calloc((size_t)p.B, sizeof(char *), "responses");
    p.answer = ts_calloc((size_t)p.B, sizeof *p.answer, "answers");
    if (!p.ids || !p.ids_len || !p.text || !p.answer) st = TS_ERR_NOMEM;
    double t0 = ts_now();
    for (int first = 0; first < problems->n && !st; first += p.per_group) {
        int count = problems->n - first < p.per_group ? problems->n - first : p.per_group;
        if (!(st = generate_group(&p, first, count))) st = score_group(&p, first, count, temperature > 0, out, fn, ctx);
        if (!o->quiet)
            fprintf(stderr, "\revaluate: %s: %d/%d problems, %.0f s ", temperature > 0 ? "sampling" : "greedy",
                    first + count, problems->n, ts_now() - t0);
    }
    if (!o->quiet) fprintf(stderr, "\n");
    pass_free(&p);
    return st;
}

ts_status ts_evaluate(ts_model *m, const bpe_tokenizer *tok, const ts_examples *problems, const ts_eval_opts *o,
                      ts_eval_problem *out, ts_eval_sample_fn fn, void *ctx) {
    if (o->max_new < 1 || o->batch < 1 || o->n_samples < 0 || (o->n_samples > 0 && !(o->temperature > 0)))
        return ts_fail(TS_ERR_ARG, "evaluate: need max_new >= 1, batch >= 1, samples >= 0 and a temperature > 0");
    if (o->n_samples > 4096) return ts_fail(TS_ERR_ARG, "evaluate: at most 4096 samples per problem");
    for (int i = 0; i < problems->n; i++)
        if (!problems->ex[i].answer) return ts_fail(TS_ERR_ARG, "evaluate: problem %d has no answer to check", i + 1);
    memset(out, 0, (size_t)problems->n * sizeof *out);
    ts_status st = TS_OK;
    if (o->greedy) st = run_pass(m, tok, problems, o, 1, 0.0f, out, NULL, NULL);
    if (!st && o->n_samples > 0) st = run_pass(m, tok, problems, o, o->n_samples, o->temperature, out, fn, ctx);
    return st;
}

/* ------------------------------------------------------------------ */
/* Summary tables                                                       */
/* ------------------------------------------------------------------ */

typedef struct {
    int problems, samples;
    double greedy_pass1, greedy_format, pass1, format_rate, mean_len, maj;
    double pass_at[32];
} summary;

/* The k of the pass\@k columns: 1, 2, 4, ... below n, then n. */
static int ks_of(int n, int *ks) {
    int m = 0;
    for (int k = 1; k < n && m < 31; k *= 2) ks[m++] = k;
    if (n > 0) ks[m++] = n;
    return m;
}

static summary summarize(const ts_examples *pr, const ts_eval_problem *r, int diff, const int *ks, int nk, int greedy) {
    summary s;
    memset(&s, 0, sizeof s);
    double sampled = 0, tokens = 0;
    for (int i = 0; i < pr->n; i++) {
        if (diff >= 0 && pr->ex[i].difficulty != diff) continue;
        s.problems++;
        s.greedy_pass1 += r[i].greedy_correct;
        s.greedy_format += r[i].greedy_format;
        if (r[i].n > 0) {
            s.samples = r[i].n;
            s.pass1 += (double)r[i].correct / r[i].n;
            s.maj += r[i].maj_correct;
            for (int j = 0; j < nk; j++) s.pass_at[j] += ts_pass_at_k(r[i].n, r[i].correct, ks[j]);
        }
        sampled += r[i].n ? r[i].clean : r[i].greedy_format;
        tokens += r[i].n ? (double)r[i].len_sum : r[i].greedy_len;
        s.mean_len += r[i].n ? r[i].n : 1;
    }
    double n = s.problems;
    s.format_rate = sampled / s.mean_len; // over samples (over greedy completions when none were sampled)
    s.mean_len = tokens / s.mean_len;
    s.greedy_pass1 = greedy ? s.greedy_pass1 / n : NAN;
    s.greedy_format = greedy ? s.greedy_format / n : NAN;
    s.pass1 = s.samples ? s.pass1 / n : NAN;
    s.maj = s.samples ? s.maj / n : NAN;
    for (int j = 0; j < nk; j++) s.pass_at[j] = s.samples ? s.pass_at[j] / n : NAN;
    return s;
}

static void csv_num(char **p, size_t *left, double x) {
    int w = isnan(x) ? snprintf(*p, *left, ",nan") : snprintf(*p, *left, ",%.6g", x);
    if (w > 0 && (size_t)w < *left) {
        *p += w;
        *left -= (size_t)w;
    }
}

static cJSON *json_num(double x) { return isnan(x) ? cJSON_CreateNull() : cJSON_CreateNumber(x); }

ts_status ts_eval_write(const char *csv_path, const char *json_path, const char *label, const ts_examples *problems,
                        const ts_eval_problem *res, const ts_eval_opts *o) {
    int ks[32], nk = ks_of(o->n_samples, ks), diffs[256], nd = 0;
    for (int i = 0; i < problems->n; i++) {
        int d = problems->ex[i].difficulty, seen = 0;
        for (int j = 0; j < nd; j++) seen |= diffs[j] == d;
        if (!seen && nd < 256) diffs[nd++] = d;
    }
    for (int i = 1; i < nd; i++) // ascending
        for (int j = i; j > 0 && diffs[j] < diffs[j - 1]; j--) {
            int t = diffs[j];
            diffs[j] = diffs[j - 1];
            diffs[j - 1] = t;
        }
    size_t cap = (size_t)(nd + 2) * 1024, left = cap;
    char *csv = ts_malloc(cap, "evaluation CSV"), *p = csv;
    cJSON *root = cJSON_CreateObject(), *groups = cJSON_CreateArray();
    if (!csv || !root || !groups) {
        free(csv);
        cJSON_Delete(root);
        cJSON_Delete(groups);
        return ts_fail(TS_ERR_NOMEM, "evaluate: out of memory for the summary");
    }
    int w = snprintf(p, left, "model,difficulty,problems,samples,greedy_pass1,greedy_format,pass1,format_rate,mean_len,maj_at_n");
    p += w;
    left -= (size_t)w;
    for (int j = 0; j < nk; j++) {
        w = snprintf(p, left, ",pass_at_%d", ks[j]);
        p += w;
        left -= (size_t)w;
    }
    cJSON_AddStringToObject(root, "model", label);
    cJSON_AddStringToObject(root, "template", ts_template_name(o->tmpl));
    cJSON_AddNumberToObject(root, "samples", o->n_samples);
    cJSON_AddNumberToObject(root, "temperature", o->temperature);
    cJSON_AddNumberToObject(root, "max_new", o->max_new);
    cJSON_AddNumberToObject(root, "seed", (double)o->seed);
    for (int g = -1; g < nd; g++) {
        int d = g < 0 ? -1 : diffs[g];
        summary s = summarize(problems, res, d, ks, nk, o->greedy);
        char dname[16];
        if (d < 0) snprintf(dname, sizeof dname, "all");
        else snprintf(dname, sizeof dname, "%d", d);
        w = snprintf(p, left, "\n%s,%s,%d,%d", label, dname, s.problems, s.samples);
        p += w;
        left -= (size_t)w;
        double row[6] = {s.greedy_pass1, s.greedy_format, s.pass1, s.format_rate, s.mean_len, s.maj};
        for (int j = 0; j < 6; j++) csv_num(&p, &left, row[j]);
        for (int j = 0; j < nk; j++) csv_num(&p, &left, s.pass_at[j]);
        cJSON *obj = cJSON_CreateObject(), *pk = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "difficulty", dname);
        cJSON_AddNumberToObject(obj, "problems", s.problems);
        static const char *const names[6] = {"greedy_pass1", "greedy_format", "pass1", "format_rate", "mean_len", "maj_at_n"};
        for (int j = 0; j < 6; j++) cJSON_AddItemToObject(obj, names[j], json_num(row[j]));
        for (int j = 0; j < nk; j++) {
            char key[16];
            snprintf(key, sizeof key, "%d", ks[j]);
            cJSON_AddItemToObject(pk, key, json_num(s.pass_at[j]));
        }
        cJSON_AddItemToObject(obj, "pass_at_k", pk);
        cJSON_AddItemToArray(groups, obj);
    }
    snprintf(p, left, "\n");
    cJSON_AddItemToObject(root, "by_difficulty", groups);
    ts_status st = TS_OK;
    if (csv_path) st = ts_write_file_atomic(csv_path, csv, strlen(csv));
    if (!st && json_path) {
        char *text = cJSON_Print(root);
        if (!text) st = ts_fail(TS_ERR_NOMEM, "evaluate: out of memory for the JSON summary");
        else {
            size_t n = strlen(text);
            text[n] = '\0';
            st = ts_write_file_atomic(json_path, text, n);
            cJSON_free(text);
        }
    }
    free(csv);
    cJSON_Delete(root);
    return st;
}

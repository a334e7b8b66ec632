/**
 * @file cmd_evaluate.c
 * @brief `tinyseek evaluate` (pass\@k, maj\@k, format rate by difficulty) and
 *        `tinyseek rejection-sample` (keep the right, clean samples as SFT
 *        pairs), both on train/evaluate.c (chapter 7).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/fileio.h"
#include "model/checkpoint.h"
#include "train/evaluate.h"

/* The first @p limit problems of each difficulty (all when 0): a view that shares the strings. */
static int select_problems(ts_examples *view, const ts_examples *all, int limit) {
    view->ex = malloc((size_t)(all->n ? all->n : 1) * sizeof *view->ex);
    view->n = 0;
    if (!view->ex) return cli_error("out of memory");
    for (int i = 0; i < all->n; i++) {
        int same = 0;
        for (int j = 0; j < i && limit > 0; j++) same += all->ex[j].difficulty == all->ex[i].difficulty;
        if (limit == 0 || same < limit) view->ex[view->n++] = all->ex[i];
    }
    return 0;
}

typedef struct {
    ts_model m;
    bpe_tokenizer tok;
    ts_examples all, view;
    ts_eval_problem *res;
} session;

static void session_free(session *s) {
    free(s->view.ex);
    ts_examples_free(&s->all);
    free(s->res);
    bpe_free(&s->tok);
    ts_model_free(&s->m);
}

static int session_open(session *s, const char *cmd, const char *model_dir, const char *problems, int limit) {
    memset(s, 0, sizeof *s);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    if (ts_checkpoint_load(&s->m, model_dir, TS_MODEL_FROZEN)) return cli_lib_error();
    if (bpe_load(&s->tok, path) || ts_examples_load(&s->all, problems, 0, 1)) return cli_lib_error();
    if (s->tok.vocab_size > s->m.cfg.vocab_size)
        return cli_error("%s: %s has %d tokens but the model's vocab_size is %d", cmd, path, s->tok.vocab_size,
                         s->m.cfg.vocab_size);
    int rc = select_problems(&s->view, &s->all, limit);
    if (rc) return rc;
    s->res = calloc((size_t)s->view.n, sizeof *s->res);
    return s->res ? 0 : cli_error("%s: out of memory", cmd);
}

/* Length of the valid UTF-8 sequence at @p s, or 0 (a model may write any byte
 * token; JSON must be UTF-8). Overlong forms and surrogates count as valid
 * here: the point is only that the bytes decode. */
static int utf8_len(const unsigned char *s) {
    int n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* A copy of @p s with every byte that is not valid UTF-8 replaced by U+FFFD (malloc'd). */
static char *utf8_clean(const char *s, int *changed) {
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    *changed = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int k = utf8_len(p);
        if (k == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
            *changed = 1;
        } else {
            memcpy(o, p, (size_t)k);
            o += k;
            p += k;
        }
    }
    *o = '\0';
    return out;
}

/* --samples-out: every sampled completion, scored, one JSON line each. */
typedef struct {
    const ts_examples *problems;
    FILE *f;
} dumper;

static ts_status dump_sample(void *ctx, int problem, int sample, const char *response, const ts_answer_score *score) {
    dumper *d = ctx;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", d->problems->ex[problem].prompt);
    cJSON_AddStringToObject(o, "answer", d->problems->ex[problem].answer);
    cJSON_AddNumberToObject(o, "difficulty", d->problems->ex[problem].difficulty);
    cJSON_AddNumberToObject(o, "sample", sample);
    int changed;
    char *text = utf8_clean(response, &changed);
    if (!text) {
        cJSON_Delete(o);
        return ts_fail(TS_ERR_NOMEM, "evaluate: out of memory");
    }
    cJSON_AddStringToObject(o, "response", text);
    free(text);
    cJSON_AddBoolToObject(o, "correct", score->correct);
    cJSON_AddStringToObject(o, "format", ts_format_name(score->format));
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return ts_fail(TS_ERR_NOMEM, "evaluate: out of memory");
    fprintf(d->f, "%s\n", line);
    cJSON_free(line);
    return TS_OK;
}

/** The evaluation flags both commands share. */
#define EVAL_FLAGS(o, tmpl_name, limit, threads, quiet)                                                                 \
    {"template", OPT_STR, &tmpl_name, "chat template the prompts are rendered with: r1, r1-zero or question", 1, 0},             \
        {"samples", OPT_INT, &o.n_samples, "sampled completions per problem (k)", 0, 4096},                            \
        {"temperature", OPT_FLOAT, &o.temperature, "sampling temperature", 0.001, 100},                                \
        {"max-new", OPT_INT, &o.max_new, "most tokens per completion", 1, 1 << 20},                                    \
        {"batch", OPT_INT, &o.batch, "sequences decoded at once", 1, 1 << 16},                                         \
        {"seed", OPT_U64, &o.seed, "sampling seed", 1, 0},                                                             \
        {"limit", OPT_INT, &limit, "first N problems of each difficulty (0 = all)", 0, 1 << 30},                       \
        {"threads", OPT_INT, &threads, "threads (0 = default)", 0, 1024},                                              \
        {"quiet", OPT_FLAG, &quiet, "no progress line", 1, 0}

int cmd_evaluate(int argc, char **argv) {
    ts_eval_opts o = ts_eval_opts_default();
    const char *model_dir = NULL, *data = NULL, *problems = NULL, *csv = NULL, *json = NULL, *label = NULL,
               *tmpl_name = "r1", *samples_out = NULL;
    int limit = 0, threads = 0, quiet = 0, no_greedy = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model_dir, "checkpoint folder (config.json, model.safetensors, tokenizer.json)", 1, 0},
        {"data", OPT_STR, &data, "folder written by `tinyseek data` (uses test.jsonl, else rl_test.jsonl)", 1, 0},
        {"problems", OPT_STR, &problems, "JSONL of {\"prompt\", \"answer\", \"difficulty\"} instead of --data", 1, 0},
        {"csv", OPT_STR, &csv, "summary CSV to write (one row per difficulty and one for all)", 1, 0},
        {"json", OPT_STR, &json, "the same summary as JSON", 1, 0},
        {"label", OPT_STR, &label, "the model's name in the summary (default: the folder)", 1, 0},
        {"no-greedy", OPT_FLAG, &no_greedy, "skip the greedy completions", 1, 0},
        {"samples-out", OPT_STR, &samples_out, "JSONL of every sampled completion with its score", 1, 0},
        EVAL_FLAGS(o, tmpl_name, limit, threads, quiet),
    };
    int rc = cli_parse("evaluate", "--model DIR (--data DIR | --problems F) [--csv F] [--json F] [flags]", argc, argv,
                       opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    ts_set_num_threads(threads);
    o.greedy = !no_greedy;
    o.quiet = quiet;
    if (ts_template_parse(tmpl_name, &o.tmpl)) return cli_lib_error();
    if (!model_dir) return cli_error("evaluate: --model is required");
    if (!data == !problems) return cli_error("evaluate: give exactly one of --data DIR or --problems FILE");
    if (!o.greedy && o.n_samples == 0) return cli_error("evaluate: nothing to do (--no-greedy and --samples 0)");
    char buf[4096];
    if (data) {
        snprintf(buf, sizeof buf, "%s/test.jsonl", data);
        if (!cli_exists(buf)) snprintf(buf, sizeof buf, "%s/rl_test.jsonl", data);
        problems = buf;
    }
    session s;
    if ((rc = session_open(&s, "evaluate", model_dir, problems, limit))) {
        session_free(&s);
        return rc;
    }
    dumper d = {&s.view, samples_out ? fopen(samples_out, "w") : NULL};
    if (samples_out && !d.f) rc = cli_error("evaluate: cannot write %s", samples_out);
    else if (ts_evaluate(&s.m, &s.tok, &s.view, &o, s.res, d.f ? dump_sample : NULL, &d) ||
             ts_eval_write(csv, json, label ? label : model_dir, &s.view, s.res, &o)) {
        rc = cli_lib_error();
    } else {
        double g = 0, c = 0, f = 0, n = 0;
        for (int i = 0; i < s.view.n; i++) {
            g += s.res[i].greedy_correct;
            c += s.res[i].n ? (double)s.res[i].correct / s.res[i].n : 0;
            f += s.res[i].n ? (double)s.res[i].clean / s.res[i].n : s.res[i].greedy_format;
            n++;
        }
        printf("evaluate: %d problems, template %s: greedy pass@1 %.3f, sampled pass@1 %.3f (k=%d, T=%g), format %.3f%s%s\n",
               s.view.n, ts_template_name(o.tmpl), o.greedy ? g / n : 0.0, c / n, o.n_samples, o.temperature, f / n,
               csv ? " -> " : "", csv ? csv : "");
    }
    if (d.f && fclose(d.f) != 0 && !rc) rc = cli_error("evaluate: cannot write %s", samples_out);
    session_free(&s);
    return rc;
}

/* Rejection sampling: the right, clean samples of each prompt, deduplicated. */
typedef struct {
    const ts_examples *problems;
    FILE *f;
    char **seen;   /* responses kept for the current problem */
    int n_seen, cap_seen, problem, kept, drawn, wrong, unclean;
} keeper;

static ts_status keep_sample(void *ctx, int problem, int sample, const char *response, const ts_answer_score *score) {
    keeper *k = ctx;
    k->drawn++;
    if (problem != k->problem) { // a new prompt: forget the last one's responses
        for (int i = 0; i < k->n_seen; i++) free(k->seen[i]);
        k->n_seen = 0;
        k->problem = problem;
    }
    if (!score->correct) {
        k->wrong++;
        return TS_OK;
    }
    int changed;
    char *text = utf8_clean(response, &changed);
    if (!text) return ts_fail(TS_ERR_NOMEM, "rejection-sample: out of memory");
    free(text);
    if (score->format != TS_FORMAT_OK || changed) { // bytes that are not UTF-8 are not a clean response either
        k->unclean++;
        return TS_OK;
    }
    for (int i = 0; i < k->n_seen; i++)
        if (strcmp(k->seen[i], response) == 0) return TS_OK; // dedupe
    if (k->n_seen == k->cap_seen) {
        int cap = k->cap_seen ? 2 * k->cap_seen : 16;
        char **grown = realloc(k->seen, (size_t)cap * sizeof *grown);
        if (!grown) return ts_fail(TS_ERR_NOMEM, "rejection-sample: out of memory");
        k->seen = grown;
        k->cap_seen = cap;
    }
    size_t n = strlen(response) + 1;
    if (!(k->seen[k->n_seen] = malloc(n))) return ts_fail(TS_ERR_NOMEM, "rejection-sample: out of memory");
    memcpy(k->seen[k->n_seen++], response, n);
    const ts_example *e = &k->problems->ex[problem];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", e->prompt);
    cJSON_AddStringToObject(o, "response", response);
    cJSON_AddStringToObject(o, "answer", e->answer);
    cJSON_AddNumberToObject(o, "difficulty", e->difficulty);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return ts_fail(TS_ERR_NOMEM, "rejection-sample: out of memory");
    fprintf(k->f, "%s\n", line);
    cJSON_free(line);
    k->kept++;
    (void)sample;
    return TS_OK;
}

int cmd_rejection_sample(int argc, char **argv) {
    ts_eval_opts o = ts_eval_opts_default();
    o.greedy = 0;
    const char *model_dir = NULL, *data = NULL, *problems = NULL, *out = NULL, *tmpl_name = "r1";
    int limit = 0, threads = 0, quiet = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model_dir, "checkpoint folder to sample from", 1, 0},
        {"data", OPT_STR, &data, "folder written by `tinyseek data` (uses rl_train.jsonl)", 1, 0},
        {"problems", OPT_STR, &problems, "JSONL of {\"prompt\", \"answer\"} instead of --data", 1, 0},
        {"out", OPT_STR, &out, "SFT JSONL to write: {\"prompt\", \"response\", \"answer\", \"difficulty\"}", 1, 0},
        EVAL_FLAGS(o, tmpl_name, limit, threads, quiet),
    };
    int rc = cli_parse("rejection-sample", "--model DIR (--data DIR | --problems F) --out F.jsonl [flags]", argc, argv,
                       opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    ts_set_num_threads(threads);
    o.quiet = quiet;
    if (ts_template_parse(tmpl_name, &o.tmpl)) return cli_lib_error();
    if (!model_dir || !out) return cli_error("rejection-sample: --model and --out are required");
    if (!data == !problems) return cli_error("rejection-sample: give exactly one of --data DIR or --problems FILE");
    if (o.n_samples < 1) return cli_error("rejection-sample: --samples must be at least 1");
    char buf[4096], tmp[4200];
    if (data) {
        snprintf(buf, sizeof buf, "%s/rl_train.jsonl", data);
        problems = buf;
    }
    session s;
    if ((rc = session_open(&s, "rejection-sample", model_dir, problems, limit))) {
        session_free(&s);
        return rc;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    keeper k = {.problems = &s.view, .f = fopen(tmp, "w"), .problem = -1};
    if (!k.f) rc = cli_error("rejection-sample: cannot write %s", tmp);
    else if (ts_evaluate(&s.m, &s.tok, &s.view, &o, s.res, keep_sample, &k)) rc = cli_lib_error();
    if (k.f && (fclose(k.f) != 0 || (!rc && rename(tmp, out) != 0)) && !rc)
        rc = cli_error("rejection-sample: cannot write %s", out);
    if (rc) remove(tmp);
    else
        printf("rejection-sample: %d prompts x %d samples: %d kept (right, clean, distinct), %d wrong, %d right but "
               "unclean -> %s\n",
               s.view.n, o.n_samples, k.kept, k.wrong, k.unclean, out);
    for (int i = 0; i < k.n_seen; i++) free(k.seen[i]);
    free(k.seen);
    session_free(&s);
    return rc;
}

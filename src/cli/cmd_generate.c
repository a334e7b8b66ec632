/**
 * @file cmd_generate.c
 * @brief `tinyseek generate`: prefill + KV-cache decode for a batch of prompts;
 *        with --speculative, greedy self-speculative decoding with the model's
 *        MTP module (chapter 6), one prompt at a time.
 *
 * A checkpoint with MTP modules generates without them by default (they are
 * dropped at load, with a note): the main model alone decides every token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/cli.h"
#include "data/bpe.h"
#include "io/fileio.h"
#include "model/checkpoint.h"

#define MAX_PROMPTS 256

/* Read prompts, one per line, from a file into a pointer array (the text buffer is kept). */
static int read_prompt_lines(const char *path, char **buf, const char **prompts, int *n) {
    size_t len;
    if (ts_read_file(path, buf, &len)) return cli_lib_error();
    for (char *line = strtok(*buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (*n >= MAX_PROMPTS) return cli_error("generate: %s has more than %d prompts", path, MAX_PROMPTS);
        prompts[(*n)++] = line;
    }
    return 0;
}

/* What ends a completion: EOS, a token the tokenizer does not have, or (unless --multiline) a newline. */
typedef struct {
    const bpe_tokenizer *tok;
    int eos, keep_newlines;
} stop_rule;

static int stops(int t, void *ctx) {
    const stop_rule *s = ctx;
    if (t == s->eos || t >= s->tok->vocab_size) return 1;
    size_t len;
    const unsigned char *bytes = bpe_token_bytes(s->tok, t, &len);
    return !s->keep_newlines && bytes && memchr(bytes, '\n', len) != NULL;
}

/* CPU seconds this process has used: on a machine shared with other work, a
 * one-thread run's CPU time measures its own cost where wall time does not. */
static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* --speculative / --sequential: one prompt at a time, greedy, with or without the MTP draft. */
static int generate_one_by_one(ts_model *m, const bpe_tokenizer *tok, const char **prompts, int **ids, const size_t *n_ids,
                               int n_prompts, int max_new, int speculative, int keep_newlines) {
    stop_rule rule = {tok, tok->special_id[BPE_EOS], keep_newlines};
    int *out = malloc((size_t)max_new * sizeof(int));
    if (!out) return cli_error("generate: out of memory");
    ts_spec_stats sum = {0, 0, 0, 0};
    double t0 = ts_now(), c0 = cpu_seconds();
    int rc = 0;
    for (int b = 0; b < n_prompts && !rc; b++) {
        int n = 0;
        ts_spec_stats s;
        ts_status st = speculative
                           ? ts_generate_speculative(m, ids[b], (int)n_ids[b], max_new, stops, &rule, out, &n, &s)
                           : ts_generate_greedy(m, ids[b], (int)n_ids[b], max_new, stops, &rule, out, &n, &s);
        if (st) {
            rc = cli_lib_error();
            break;
        }
        sum.tokens += s.tokens;
        sum.main_passes += s.main_passes;
        sum.drafted += s.drafted;
        sum.accepted += s.accepted;
        char *text = NULL;
        size_t len = 0;
        if (bpe_decode(tok, out, (size_t)n, &text, &len)) {
            rc = cli_lib_error();
            break;
        }
        printf("%s%.*s\n", prompts[b], (int)len, text);
        free(text);
    }
    double secs = ts_now() - t0, cpu = cpu_seconds() - c0;
    free(out);
    if (rc) return rc;
    // main-model passes after each prompt's prefill (plain greedy: one per token; speculative: 1/(1 + α))
    fprintf(stderr,
            "generate: %s greedy, %d prompts, %ld new tokens in %.3f s (prefill included): %.1f tokens/s, "
            "%.1f tokens per CPU second; main-model passes per token %.3f",
            speculative ? "speculative" : "sequential", n_prompts, sum.tokens, secs, secs > 0 ? sum.tokens / secs : 0.0,
            cpu > 0 ? sum.tokens / cpu : 0.0,
            sum.tokens ? (double)sum.main_passes / sum.tokens : 0.0);
    if (speculative)
        fprintf(stderr, "; drafts %ld, accepted %ld (acceptance %.3f), tokens per main pass %.3f",
                sum.drafted, sum.accepted, sum.drafted ? (double)sum.accepted / sum.drafted : 0.0,
                sum.main_passes ? (double)sum.tokens / sum.main_passes : 0.0);
    fprintf(stderr, "\n");
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *prompts_file = NULL;
    int max_new = 64, threads = 0, keep_newlines = 0, speculative = 0, sequential = 0;
    uint64_t seed = 1;
    ts_sampler s = {0.0f, 0, 1.0f};
    cli_opt opts[] = {
        {"model", OPT_STR, &model_dir, "checkpoint folder (config.json, model.safetensors, tokenizer.json)", 1, 0},
        {"prompts", OPT_STR, &prompts_file, "file with one prompt per line (in addition to positional prompts)", 1, 0},
        {"max-new", OPT_INT, &max_new, "most new tokens per prompt", 1, 1 << 20},
        {"temperature", OPT_FLOAT, &s.temperature, "0 = greedy", 0, 100},
        {"top-k", OPT_INT, &s.top_k, "sample from the k most likely tokens (0 = all)", 0, 1 << 24},
        {"top-p", OPT_FLOAT, &s.top_p, "sample from the smallest set with this much mass", 0.000001, 1},
        {"seed", OPT_U64, &seed, "sampling seed", 1, 0},
        {"threads", OPT_INT, &threads, "threads (0 = default)", 0, 1024},
        {"multiline", OPT_FLAG, &keep_newlines, "keep generating past a newline (default: stop at the end of the line)", 1, 0},
        {"speculative", OPT_FLAG, &speculative,
         "greedy self-speculative decoding with the model's MTP module, one prompt at a time (stats on stderr)", 1, 0},
        {"sequential", OPT_FLAG, &sequential,
         "plain greedy decoding one prompt at a time, the baseline of --speculative (stats on stderr)", 1, 0},
    };
    const char *prompts[MAX_PROMPTS];
    int n_prompts = 0;
    int rc = cli_parse("generate", "--model DIR [flags] PROMPT...", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                       prompts, MAX_PROMPTS, &n_prompts);
    if (rc) return rc == 1 ? 0 : rc;
    ts_set_num_threads(threads);
    if (!model_dir) return cli_error("generate: --model is required");
    char *file_buf = NULL;
    if (prompts_file && (rc = read_prompt_lines(prompts_file, &file_buf, prompts, &n_prompts))) {
        free(file_buf);
        return rc;
    }
    if (n_prompts == 0) {
        free(file_buf);
        return cli_error("generate: no prompt given (positional arguments or --prompts FILE)");
    }

    if ((speculative || sequential) && s.temperature > 0) {
        free(file_buf);
        return cli_error("generate: --speculative and --sequential decode greedily: drop --temperature");
    }
    if (speculative && sequential) {
        free(file_buf);
        return cli_error("generate: give one of --speculative or --sequential");
    }
    ts_model m;
    int dropped = 0;
    if (speculative ? ts_checkpoint_load(&m, model_dir, TS_MODEL_FROZEN)
                    : ts_checkpoint_load_main(&m, model_dir, TS_MODEL_FROZEN, &dropped)) {
        free(file_buf);
        return cli_lib_error();
    }
    if (dropped)
        fprintf(stderr, "generate: note: %s has %d multi-token prediction module(s); generating without them "
                        "(--speculative uses module 1 as a draft)\n", model_dir, dropped);
    if (speculative && m.cfg.num_nextn_predict_layers < 1) {
        ts_model_free(&m);
        free(file_buf);
        return cli_error("generate: --speculative needs a model with an MTP module (%s/config.json has "
                         "num_nextn_predict_layers 0)", model_dir);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    bpe_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    if (bpe_load(&tok, path)) {
        ts_model_free(&m);
        free(file_buf);
        return cli_lib_error();
    }
    int V = m.cfg.vocab_size, B = n_prompts;
    int **ids = calloc((size_t)B, sizeof *ids);
    size_t *n_ids = calloc((size_t)B, sizeof *n_ids);
    int max_prompt = 1;
    rc = 0;
    for (int b = 0; b < B && !rc; b++) {
        if (bpe_encode(&tok, prompts[b], strlen(prompts[b]), &ids[b], &n_ids[b])) rc = cli_lib_error();
        else if (n_ids[b] == 0) rc = cli_error("generate: prompt %d is empty", b + 1);
        else if ((int)n_ids[b] > max_prompt) max_prompt = (int)n_ids[b];
    }
    int max_T = max_prompt + max_new;
    if (!rc && max_T > m.cfg.max_position_embeddings)
        rc = cli_error("generate: prompt (%d tokens) + --max-new %d exceeds max_position_embeddings %d", max_prompt,
                       max_new, m.cfg.max_position_embeddings);
    if (!rc && (speculative || sequential)) {
        rc = generate_one_by_one(&m, &tok, prompts, ids, n_ids, B, max_new, speculative, keep_newlines);
        for (int b = 0; b < B; b++) free(ids[b]);
        free(ids);
        free(n_ids);
        bpe_free(&tok);
        ts_model_free(&m);
        free(file_buf);
        return rc;
    }
    ts_kvcache kv;
    memset(&kv, 0, sizeof kv);
    float *logits = NULL;
    int **out = NULL, *n_out = NULL, *active = NULL, *next = NULL;
    if (!rc && ts_kvcache_create(&kv, &m, B, max_T)) rc = cli_lib_error();
    if (!rc) {
        logits = malloc((size_t)B * V * sizeof(float));
        out = calloc((size_t)B, sizeof *out);
        n_out = calloc((size_t)B, sizeof *n_out);
        active = calloc((size_t)B, sizeof *active);
        next = calloc((size_t)B, sizeof *next);
        if (!logits || !out || !n_out || !active || !next) rc = cli_error("generate: out of memory");
    }
    ts_rng rng;
    ts_rng_seed(&rng, seed, TS_STREAM_SAMPLE);
    double t0 = ts_now(), prefill_s = 0;
    long generated = 0;
    for (int b = 0; b < B && !rc; b++) {
        out[b] = malloc((size_t)max_new * sizeof(int));
        if (!out[b]) {
            rc = cli_error("generate: out of memory");
            break;
        }
        if (ts_model_prefill(&m, &kv, b, ids[b], (int)n_ids[b], logits + (size_t)b * V)) rc = cli_lib_error();
        active[b] = 1;
    }
    prefill_s = ts_now() - t0;
    int eos = tok.special_id[BPE_EOS];
    for (int step = 0; step < max_new && !rc; step++) {
        int any = 0;
        for (int b = 0; b < B; b++) {
            if (!active[b]) continue;
            int t = ts_sample(logits + (size_t)b * V, V, &s, &rng);
            size_t len;
            const unsigned char *bytes = bpe_token_bytes(&tok, t, &len);
            int newline = !keep_newlines && bytes && memchr(bytes, '\n', len);
            if (t == eos || newline || t >= tok.vocab_size) {
                active[b] = 0;
                continue;
            }
            out[b][n_out[b]++] = t;
            next[b] = t;
            generated++;
            any = 1;
        }
        if (!any || step == max_new - 1) break;
        if (ts_model_decode(&m, &kv, next, active, logits)) rc = cli_lib_error();
    }
    double total_s = ts_now() - t0;
    for (int b = 0; b < B && !rc; b++) {
        char *text = NULL;
        size_t len = 0;
        if (bpe_decode(&tok, out[b], (size_t)n_out[b], &text, &len)) {
            rc = cli_lib_error();
            break;
        }
        printf("%s%.*s\n", prompts[b], (int)len, text);
        free(text);
    }
    if (!rc) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr, "generate: %d prompts, %ld new tokens, prefill %.3f s, decode %.1f tokens/s, peak memory %.0f MB\n",
                B, generated, prefill_s, total_s > prefill_s ? generated / (total_s - prefill_s) : 0.0,
                ru.ru_maxrss / 1024.0);
    }
    for (int b = 0; b < B; b++) {
        free(ids[b]);
        if (out) free(out[b]);
    }
    free(ids);
    free(n_ids);
    free(out);
    free(n_out);
    free(active);
    free(next);
    free(logits);
    ts_kvcache_free(&kv);
    bpe_free(&tok);
    ts_model_free(&m);
    free(file_buf);
    return rc;
}

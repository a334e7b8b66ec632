/**
 * @file cmd_bench_decode.c
 * @brief `tinyseek bench-decode`: KV-cache decode speed as the context grows.
 *
 * Prefills B sequences with --start random tokens, then decodes one random
 * token per sequence per step until every sequence holds --max-context tokens
 * plus one window, timing every step. Each CSV row summarises one window of
 * --every steps: the context (tokens already cached when the window starts),
 * the median time of a step in it (the median, because a shared machine adds
 * outliers), and tokens/s = B / that time. Decode speed does not depend on the
 * weights' values, so a freshly initialised model (--config) measures the same
 * thing as a trained one (--model).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/checkpoint.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cmd_bench_decode(int argc, char **argv) {
    const char *model_dir = NULL, *config = NULL, *out = NULL, *label = NULL, *mla_cache = "absorbed";
    int batch = 4, start = 64, max_context = 1024, every = 32, threads = 0;
    uint64_t seed = 1;
    cli_opt opts[] = {
        {"model", OPT_STR, &model_dir, "checkpoint folder to time", 1, 0},
        {"config", OPT_STR, &config, "or a config.json (weights initialised at random)", 1, 0},
        {"batch", OPT_INT, &batch, "sequences decoded together (B)", 1, 4096},
        {"start", OPT_INT, &start, "prompt length prefilled before timing", 1, 1 << 20},
        {"max-context", OPT_INT, &max_context, "last context length timed", 1, 1 << 20},
        {"every", OPT_INT, &every, "decode steps per CSV row (a window)", 1, 1 << 20},
        {"out", OPT_STR, &out, "CSV file: context,ms_per_step,tokens_per_s,kv_bytes_per_token,kv_bytes_in_use", 1, 0},
        {"label", OPT_STR, &label, "name printed in the summary line (default: the attention kind)", 1, 0},
        {"seed", OPT_U64, &seed, "seed of the random tokens (and of the weights with --config)", 1, 0},
        {"threads", OPT_INT, &threads, "threads (0 = default)", 0, 1024},
        {"mla-cache", OPT_STR, &mla_cache, "MLA models: absorbed (latent cache, default) or naive (full keys/values)", 1, 0},
    };
    int rc = cli_parse("bench-decode", "(--model DIR | --config F) [flags]", argc, argv, opts,
                       (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    ts_set_num_threads(threads);
    if (!model_dir == !config) return cli_error("bench-decode: give exactly one of --model DIR or --config F");
    if (start > max_context) return cli_error("bench-decode: --start %d exceeds --max-context %d", start, max_context);
    ts_model m;
    if (model_dir) {
        if (ts_checkpoint_load(&m, model_dir, 0)) return cli_lib_error();
    } else {
        ts_config cfg;
        if (ts_config_load(&cfg, config) || ts_model_create(&m, &cfg, 0)) return cli_lib_error();
        ts_model_init_weights(&m, seed);
    }
    const ts_config *c = &m.cfg;
    int max_T = max_context + every; /* the last window starts at max_context */
    if (max_T > c->max_position_embeddings) {
        ts_model_free(&m);
        return cli_error("bench-decode: --max-context %d + --every %d exceeds max_position_embeddings %d of %s",
                         max_context, every, c->max_position_embeddings, model_dir ? model_dir : config);
    }
    ts_kvcache kv;
    int naive = strcmp(mla_cache, "naive") == 0;
    if (!naive && strcmp(mla_cache, "absorbed") != 0) {
        ts_model_free(&m);
        return cli_error("bench-decode: --mla-cache must be absorbed or naive, not '%s'", mla_cache);
    }
    if (ts_kvcache_create_for(&kv, &m.cfg, batch, max_T, naive ? TS_KV_NAIVE : TS_KV_ABSORBED)) {
        ts_model_free(&m);
        return cli_lib_error();
    }
    /* touch every page now, so page faults are not timed */
    if (kv.latent) memset(kv.latent, 0, kv.bytes); /* absorbed MLA: the latent is the whole cache */
    else {
        memset(kv.k, 0, (size_t)kv.L * kv.B * kv.max_T * kv.kv_dim * sizeof(float));
        memset(kv.v, 0, (size_t)kv.L * kv.B * kv.max_T * kv.v_dim * sizeof(float));
    }
    int V = c->vocab_size;
    int *tokens = malloc((size_t)(start > batch ? start : batch) * sizeof(int));
    float *logits = malloc((size_t)batch * V * sizeof(float));
    double *times = malloc((size_t)every * sizeof(double));
    FILE *f = out ? fopen(out, "w") : NULL;
    if (!tokens || !logits || !times) rc = cli_error("bench-decode: out of memory");
    else if (out && !f) rc = cli_error("bench-decode: cannot write %s", out);
    ts_rng rng;
    ts_rng_seed(&rng, seed, TS_STREAM_SAMPLE);
    for (int b = 0; b < batch && !rc; b++) {
        for (int i = 0; i < start; i++) tokens[i] = (int)ts_rng_below(&rng, (uint64_t)V);
        if (ts_model_prefill(&m, &kv, b, tokens, start, NULL)) rc = cli_lib_error();
    }
    const char *kind = c->arch != TS_ARCH_LLAMA ? (naive ? "MLA-naive" : "MLA-absorbed")
                       : c->num_key_value_heads == c->num_attention_heads ? "MHA"
                       : c->num_key_value_heads == 1 ? "MQA" : "GQA";
    long long per_token = (long long)(kv.bytes / ((size_t)batch * max_T)); /* K and V, all layers */
    if (f) fprintf(f, "context,ms_per_step,tokens_per_s,kv_bytes_per_token,kv_bytes_in_use\n");
    double first = 0, last = 0;
    int last_ctx = start;
    for (int ctx = start; ctx <= max_context && !rc; ctx += every) {
        for (int s = 0; s < every && !rc; s++) {
            for (int b = 0; b < batch; b++) tokens[b] = (int)ts_rng_below(&rng, (uint64_t)V);
            double t0 = ts_now();
            if (ts_model_decode(&m, &kv, tokens, NULL, logits)) rc = cli_lib_error();
            times[s] = ts_now() - t0;
        }
        if (rc) break;
        qsort(times, (size_t)every, sizeof *times, cmp_double);
        double med = every % 2 ? times[every / 2] : 0.5 * (times[every / 2 - 1] + times[every / 2]);
        double tps = batch / med;
        if (ctx == start) first = tps;
        last = tps;
        last_ctx = ctx;
        if (f) fprintf(f, "%d,%.4f,%.1f,%lld,%lld\n", ctx, med * 1e3, tps, per_token, per_token * ctx * batch);
    }
    if (!rc)
        printf("bench-decode: %s (%d heads, %d kv heads), batch %d, kv cache %lld bytes per token: "
               "%.0f tokens/s at context %d, %.0f tokens/s at context %d (%d threads, matmul %s)%s%s\n",
               label ? label : kind, c->num_attention_heads, c->num_key_value_heads, batch, per_token, first, start,
               last, last_ctx, ts_num_threads(), ts_matmul_backend(), out ? " -> " : "", out ? out : "");
    if (f && fclose(f) && !rc) rc = cli_error("bench-decode: error writing %s", out);
    free(tokens);
    free(logits);
    free(times);
    ts_kvcache_free(&kv);
    ts_model_free(&m);
    return rc;
}

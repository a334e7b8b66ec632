/**
 * @file cmd_bench.c
 * @brief `tinyseek bench`: how fast a config trains and generates on this
 *        machine, and how that compares with the machine's sgemm.
 *
 * On a random model of --config (max_position_embeddings raised to fit
 * prompt + generated tokens when needed; the arithmetic is the same) it measures
 *   - training: tokens/s of whole steps (zero_grad, forward, backward, clip,
 *     AdamW) on one fixed batch, the median of --steps timed steps after
 *     --warmup untimed ones; and the step's achieved GFLOP/s, from the
 *     analytic count of its matrix-multiply FLOPs (attention counted as the
 *     full T x T products it computes);
 *   - prefill: tokens/s of the prompt's forward into an empty KV cache (median);
 *   - generation: tokens/s of --gen greedy KV-cache decode steps, batch 1 (median);
 *   - sgemm: GFLOP/s of ts_sgemm() on a 1024^3 product, with the run's threads
 *     and with one, the yardstick for the training step;
 *   - with --rollout N: post-training's work (bench_rollout.h): tokens/s of
 *     N sequences sampled at once through the batched KV cache, and seconds per
 *     GRPO step on them; measured first, from the saved weights;
 *   - peak RSS of the process (getrusage);
 *   - for every timed part, the process's CPU time over the wall time (the
 *     threads it had: on a loaded machine, fewer than asked for).
 * With --out DIR it first writes the model (config.json, model.safetensors)
 * and the batch and prompt (bench_inputs.safetensors) there, and with
 * --rollout the rollout batch (bench_rollout.safetensors), so the PyTorch
 * twin (tests/reference/twin.py bench) runs exactly the same work.
 * The last line of stdout is `RESULT key=value ...` for scripts/bench.py.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/bench_rollout.h"
#include "cli/cli.h"
#include "core/ops.h"
#include "core/optim.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* Matrix-multiply FLOPs of one training step (forward + backward = 3 x forward):
 * 2 per multiply-add; every weight matrix sees every token (for MoE only the
 * activated experts); attention computes full T x T products per head. */
static double train_step_flops(const ts_config *c, int B, int T) {
    long long total, active;
    ts_model_count_params(c, &total, &active);
    double C = c->hidden_size, V = c->vocab_size, L = c->num_hidden_layers;
    /* weights used in matmuls: all activated ones but the embedding table and the norms */
    double matmul_params = (double)active - (c->tie_word_embeddings ? 0 : V * C) - C * (2 * L + 1);
    double N = (double)B * T;
    double attn = 2.0 * B * c->num_attention_heads * (double)T * T *
                  (ts_config_qk_head_dim(c) + ts_config_v_head_dim(c)) * L;
    return 3.0 * (2.0 * N * matmul_params + attn);
}

/* GFLOP/s of ts_sgemm on an n^3 product (best of a few runs of enough repeats). */
static double sgemm_gflops(int n, int threads) {
    ts_set_num_threads(threads);
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)), *c = malloc(nn * sizeof(float));
    double best = 0;
    if (a && b && c) {
        ts_rng rng;
        ts_rng_seed(&rng, 7, TS_STREAM_TEST);
        ts_rng_fill_uniform(&rng, a, (long)nn, -1, 1);
        ts_rng_fill_uniform(&rng, b, (long)nn, -1, 1);
        ts_sgemm(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm up */
        for (int rep = 0; rep < 5; rep++) {
            int k = 0;
            double t0 = ts_now(), dt;
            do {
                ts_sgemm(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
                k++;
            } while ((dt = ts_now() - t0) < 0.1);
            double g = 2.0 * n * nn * k / dt * 1e-9;
            if (g > best) best = g;
        }
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* CPU time of the whole process (all threads), seconds: on a busy machine the
 * wall clock also counts the time slices other programs took. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int cmd_bench(int argc, char **argv) {
    const char *config = NULL, *out = NULL, *label = NULL;
    int B = 16, T = 128, steps = 10, warmup = 2, prompt = 16, gen = 256, reps = 5, threads = 0, sgemm_n = 1024;
    int no_train = 0, no_gen = 0;
    bench_rollout_opts ro = {.n = 0, .new_tokens = 64, .group = 8, .reps = 3, .steps = 3, .beta = 0.04f};
    uint64_t seed = 1;
    cli_opt opts[] = {
        {"config", OPT_STR, &config, "model config.json", 1, 0},
        {"out", OPT_STR, &out, "write the model, batch and prompt here first (for the PyTorch twin)", 1, 0},
        {"label", OPT_STR, &label, "name of this config in the RESULT line (default: the config path)", 1, 0},
        {"batch", OPT_INT, &B, "training sequences per step (B)", 1, 4096},
        {"seq", OPT_INT, &T, "training tokens per sequence (T)", 2, 1 << 20},
        {"steps", OPT_INT, &steps, "timed training steps", 1, 100000},
        {"warmup", OPT_INT, &warmup, "untimed training steps first", 0, 100000},
        {"prompt", OPT_INT, &prompt, "prompt tokens (prefill)", 1, 1 << 20},
        {"gen", OPT_INT, &gen, "new tokens per generation (batch 1, greedy, KV cache)", 1, 1 << 20},
        {"reps", OPT_INT, &reps, "prefill and generation repeats (median)", 1, 1000},
        {"sgemm", OPT_INT, &sgemm_n, "size n of the n^3 sgemm yardstick (0 = skip)", 0, 8192},
        {"seed", OPT_U64, &seed, "seed of the weights, batch and prompt", 1, 0},
        {"threads", OPT_INT, &threads, "threads (0 = default)", 0, 1024},
        {"no-train", OPT_FLAG, &no_train, "skip the training measurement", 1, 0},
        {"no-gen", OPT_FLAG, &no_gen, "skip the prefill and generation measurement", 1, 0},
        {"rollout", OPT_INT, &ro.n, "also sample this many sequences at once (batched KV cache, temperature 1, "
                                    "no early stop) and time GRPO steps on them (0 = skip)", 0, 65536},
        {"new", OPT_INT, &ro.new_tokens, "rollout: new tokens per sequence", 1, 1 << 20},
        {"group", OPT_INT, &ro.group, "rollout: completions per GRPO group (divides --rollout)", 1, 65536},
        {"rollout-reps", OPT_INT, &ro.reps, "rollout: timed rollouts (median)", 1, 1000},
        {"grpo-steps", OPT_INT, &ro.steps, "rollout: timed GRPO steps (median)", 1, 100000},
        {"beta", OPT_FLOAT, &ro.beta, "rollout: GRPO's KL weight (> 0: the reference model's forward is timed too)", 0,
         100},
    };
    int rc = cli_parse("bench", "--config F [flags]", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0,
                       NULL);
    if (rc) return rc == 1 ? 0 : rc;
    if (!config) return cli_error("bench: --config is required");
    if (ro.n > 0 && ro.n % ro.group)
        return cli_error("bench: --rollout %d is not a multiple of --group %d", ro.n, ro.group);
    ts_set_num_threads(threads);
    int nth = ts_num_threads();

    ts_config cfg;
    if (ts_config_load(&cfg, config)) return cli_lib_error();
    int need = prompt + gen > T ? prompt + gen : T;
    if (ro.n > 0 && prompt + ro.new_tokens + 1 > need) need = prompt + ro.new_tokens + 1;
    if (cfg.max_position_embeddings < need) cfg.max_position_embeddings = need;
    ts_model m;
    if (ts_model_create(&m, &cfg, 1)) return cli_lib_error();
    ts_model_init_weights(&m, seed);
    int N = B * T, V = cfg.vocab_size;
    int *tokens = malloc((size_t)N * sizeof(int)), *targets = malloc((size_t)N * sizeof(int));
    int *seq = malloc((size_t)(prompt + gen) * sizeof(int));
    float *ftok = malloc((size_t)N * sizeof(float)), *ftgt = malloc((size_t)N * sizeof(float));
    float *fprompt = malloc((size_t)prompt * sizeof(float)), *logits = malloc((size_t)V * sizeof(float));
    int nt = steps > reps ? steps : reps;
    double *times = malloc((size_t)nt * sizeof(double)), *cpu = malloc((size_t)nt * sizeof(double));
    ts_kvcache kv;
    memset(&kv, 0, sizeof kv);
    if (!tokens || !targets || !seq || !ftok || !ftgt || !fprompt || !logits || !times || !cpu) {
        rc = cli_error("bench: out of memory");
        goto done;
    }
    ts_rng rng;
    ts_rng_seed(&rng, seed, TS_STREAM_TEST);
    for (int i = 0; i < N; i++) {
        ftok[i] = (float)(tokens[i] = (int)ts_rng_below(&rng, (uint64_t)V));
        ftgt[i] = (float)(targets[i] = (int)ts_rng_below(&rng, (uint64_t)V));
    }
    for (int i = 0; i < prompt; i++) fprompt[i] = (float)(seq[i] = (int)ts_rng_below(&rng, (uint64_t)V));
    if (out) {
        char path[4096];
        int shape_bt[2] = {B, T};
        ts_st_entry e[3] = {{"tokens", 2, shape_bt, ftok}, {"targets", 2, shape_bt, ftgt}, {"prompt", 1, &prompt, fprompt}};
        snprintf(path, sizeof path, "%s/bench_inputs.safetensors", out);
        if (ts_checkpoint_save(&m, out, NULL) || ts_safetensors_write(path, e, 3, NULL)) {
            rc = cli_lib_error();
            goto done;
        }
    }
    printf("bench: %s, %d threads, matmul %s\n", config, nth, ts_matmul_backend());

    bench_rollout_result rr;
    memset(&rr, 0, sizeof rr);
    if (ro.n > 0) { /* first: it starts from the saved weights, as the twin does, and restores them */
        ro.prompt = prompt;
        ro.seed = seed;
        if (bench_rollout(&m, seq, &ro, out, &rr)) {
            rc = cli_lib_error();
            goto done;
        }
        printf("bench: rollouts   %8.0f tokens/s  (%d sequences at once, prompt %d, %ld new tokens in all, "
               "temperature 1, median of %d; CPU/wall %.2f)\n",
               rr.tok_s, ro.n, prompt, rr.tokens, ro.reps, rr.cpu_util);
        printf("bench: GRPO step  %8.3f s  (%d groups of %d, %d tokens each, beta %g, median of %d; CPU/wall %.2f; "
               "first gradient norm %.6g, largest weight change %.3g)\n",
               rr.step_s, ro.n / ro.group, ro.group, prompt + ro.new_tokens, (double)ro.beta, ro.steps,
               rr.step_cpu_util, rr.grad_norm, rr.max_dw);
    }

    double train_tps = 0, step_ms = 0, step_cpu_ms = 0, step_gflops = 0, flops = train_step_flops(&cfg, B, T);
    double train_util = 0;
    if (!no_train) {
        if (ts_model_reserve(&m, B, T)) {
            rc = cli_lib_error();
            goto done;
        }
        ts_adamw adamw = ts_adamw_defaults();
        for (int s = 0; s < warmup + steps; s++) {
            double t0 = ts_now(), c0 = cpu_now();
            ts_model_zero_grad(&m);
            float loss = ts_model_forward(&m, tokens, targets, B, T);
            ts_model_backward(&m);
            grad_clip(m.params.grad, m.params.numel, 1.0f);
            adamw_step(&m.params, &adamw, 1e-4f, s + 1);
            if (s >= warmup) {
                times[s - warmup] = ts_now() - t0;
                cpu[s - warmup] = cpu_now() - c0;
            }
            if (loss != loss) {
                rc = cli_error("bench: the loss is not a number");
                goto done;
            }
        }
        double t = median(times, steps);
        train_tps = N / t;
        step_ms = 1e3 * t;
        step_gflops = flops / t * 1e-9;
        step_cpu_ms = 1e3 * median(cpu, steps);
        double wall_sum = 0, cpu_sum = 0;
        for (int s = 0; s < steps; s++) {
            wall_sum += times[s];
            cpu_sum += cpu[s];
        }
        train_util = cpu_sum / wall_sum;
        printf("bench: training   %8.0f tokens/s  (batch %dx%d, median of %d steps %.1f ms, %.1f ms CPU, %.2f GFLOP/step, "
               "%.1f GFLOP/s)\n", train_tps, B, T, steps, step_ms, step_cpu_ms, flops * 1e-9, step_gflops);
    }

    double prefill_tps = 0, gen_tps = 0, gen_cpu_tps = 0, gen_util = 0;
    if (!no_gen) {
        if (ts_kvcache_create(&kv, &m, 1, prompt + gen)) {
            rc = cli_lib_error();
            goto done;
        }
        for (int r = 0; r < reps; r++) { /* prefill */
            double t0 = ts_now();
            if (ts_model_prefill(&m, &kv, 0, seq, prompt, logits)) {
                rc = cli_lib_error();
                goto done;
            }
            times[r] = ts_now() - t0;
        }
        prefill_tps = prompt / median(times, reps);
        for (int r = 0; r < reps; r++) { /* prefill, then greedy decode */
            if (ts_model_prefill(&m, &kv, 0, seq, prompt, logits)) {
                rc = cli_lib_error();
                goto done;
            }
            double t0 = ts_now(), c0 = cpu_now();
            for (int i = 0; i < gen; i++) {
                seq[prompt + i] = argmax(logits, V);
                if (ts_model_decode(&m, &kv, &seq[prompt + i], NULL, logits)) {
                    rc = cli_lib_error();
                    goto done;
                }
            }
            times[r] = ts_now() - t0;
            cpu[r] = cpu_now() - c0;
        }
        gen_tps = gen / median(times, reps);
        gen_cpu_tps = gen / median(cpu, reps);
        double wall_sum = 0, cpu_sum = 0;
        for (int r = 0; r < reps; r++) {
            wall_sum += times[r];
            cpu_sum += cpu[r];
        }
        gen_util = cpu_sum / wall_sum;
        printf("bench: prefill    %8.0f tokens/s  (prompt %d, median of %d)\n", prefill_tps, prompt, reps);
        printf("bench: generation %8.0f tokens/s  (batch 1, %d new tokens, KV cache, median of %d; %.0f per CPU-second)\n",
               gen_tps, gen, reps, gen_cpu_tps);
    }

    double sg = 0, sg1 = 0;
    if (sgemm_n > 0) {
        sg = sgemm_gflops(sgemm_n, nth);
        sg1 = nth == 1 ? sg : sgemm_gflops(sgemm_n, 1);
        ts_set_num_threads(nth);
        printf("bench: sgemm %d^3 %.1f GFLOP/s on %d threads, %.1f on 1; training step at %.0f%% of the 1-thread sgemm\n",
               sgemm_n, sg, nth, sg1, sg1 > 0 ? 100 * step_gflops / sg1 : 0.0);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = ru.ru_maxrss / 1024.0;
    printf("bench: peak RSS %.1f MB\n", rss_mb);
    printf("RESULT impl=tinyseek config=%s threads=%d batch=%d seq=%d train_tok_s=%.1f step_ms=%.3f step_cpu_ms=%.3f "
           "step_gflop=%.4f step_gflops=%.2f prefill_tok_s=%.1f gen_tok_s=%.1f gen_cpu_tok_s=%.1f sgemm_gflops=%.2f sgemm1_gflops=%.2f "
           "peak_rss_mb=%.1f train_util=%.3f gen_util=%.3f rollout_n=%d rollout_new=%d rollout_tok_s=%.1f "
           "rollout_tokens=%ld rollout_util=%.3f grpo_step_s=%.5f grpo_util=%.3f grpo_grad_norm=%.8g grpo_max_dw=%.4g "
           "rollout_sum=%lld matmul=%s blas_core=%s\n",
           label ? label : config, nth, B, T, train_tps, step_ms, step_cpu_ms, flops * 1e-9, step_gflops, prefill_tps,
           gen_tps, gen_cpu_tps, sg, sg1, rss_mb, train_util, gen_util, ro.n, ro.new_tokens, rr.tok_s, rr.tokens,
           rr.cpu_util, rr.step_s, rr.step_cpu_util, rr.grad_norm, rr.max_dw, rr.checksum,
           ts_sgemm_uses_c_loops() ? "c" : "openblas", ts_blas_core());
done:
    ts_kvcache_free(&kv);
    free(tokens);
    free(targets);
    free(seq);
    free(ftok);
    free(ftgt);
    free(fprompt);
    free(logits);
    free(times);
    free(cpu);
    ts_model_free(&m);
    return rc;
}

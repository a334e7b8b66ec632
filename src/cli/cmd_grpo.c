/**
 * @file cmd_grpo.c
 * @brief `tinyseek grpo`: GRPO with rule rewards from a base (R1-Zero) or SFT
 *        (R1) checkpoint, or the online-RFT baseline (chapter 8), on
 *        train/grpo_train.c.
 *
 * Exit status: 0 done; 2 bad input (one line naming the file, field or flag);
 * 3 the training diverged (see `tinyseek pretrain`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "data/bpe.h"
#include "model/checkpoint.h"
#include "train/grpo_train.h"

int cmd_grpo(int argc, char **argv) {
    ts_train_opts o = ts_train_opts_default();
    o.steps = 50;
    o.warmup = 0;
    o.lr = 1e-4f;
    o.min_lr = 1e-4f;
    o.eval_every = 10;
    o.adamw.weight_decay = 0.0f;
    ts_grpo_train_opts g = ts_grpo_train_opts_default();
    const char *init = NULL, *data = NULL, *prompts_path = NULL, *test_path = NULL, *out = NULL, *metrics = NULL,
               *tmpl_name = "r1", *norm_name = "seq", *algo_name = "grpo";
    int eval_problems = 50;
    cli_train_flags tf = {.wd = o.adamw.weight_decay};
    cli_opt opts[] = {
        {"init", OPT_STR, &init, "checkpoint to start from and, with --beta > 0, the frozen reference", 1, 0},
        {"data", OPT_STR, &data, "folder written by `tinyseek data` (rl_train.jsonl, test.jsonl)", 1, 0},
        {"train", OPT_STR, &prompts_path, "JSONL of {\"prompt\", \"answer\"} instead of --data's rl_train.jsonl", 1, 0},
        {"test", OPT_STR, &test_path, "JSONL of held-out problems (default: --data's test.jsonl)", 1, 0},
        {"out", OPT_STR, &out, "checkpoint folder to write", 1, 0},
        {"metrics", OPT_STR, &metrics, "CSV file, one row per step (default OUT/metrics.csv)", 1, 0},
        {"algo", OPT_STR, &algo_name, "grpo; rft (SFT on each step's right, clean samples); ppo (a learned value head)", 1, 0},
        {"value-coef", OPT_FLOAT, &g.value_coef, "ppo: weight of the value loss", 0, 100},
        {"value-lr", OPT_FLOAT, &g.value_lr, "ppo: the value head's Adam learning rate", 0, 10},
        {"template", OPT_STR, &tmpl_name, "chat template: r1 (after SFT), r1-zero or question (from a base model)", 1, 0},
        {"group", OPT_INT, &g.G, "completions per prompt (G)", 1, 4096},
        {"prompts", OPT_INT, &g.P, "prompts per rollout batch (P)", 1, 4096},
        {"mu", OPT_INT, &g.mu, "optimizer steps per rollout batch", 1, 1000},
        {"beta", OPT_FLOAT, &g.grpo.beta, "weight of the k3 KL to the reference (0 = no reference held)", 0, 100},
        {"norm", OPT_STR, &norm_name, "seq (per completion, DeepSeekMath), token (DAPO) or drgrpo", 1, 0},
        {"clip-low", OPT_FLOAT, &g.grpo.eps_low, "lower clip: rho below 1 - clip-low stops pushing down", 0, 0.999},
        {"clip-high", OPT_FLOAT, &g.grpo.eps_high, "upper clip: rho above 1 + clip-high stops pushing up (DAPO: 0.28)", 0, 100},
        {"drop-zero-var", OPT_FLAG, &g.grpo.drop_zero_var, "groups whose rewards are all equal leave the batch", 1, 0},
        {"format-reward", OPT_FLOAT, &g.reward.format_weight, "reward for a clean response with a parseable answer", 0, 100},
        {"max-new", OPT_INT, &g.max_new, "most tokens per completion", 1, 1 << 16},
        {"temperature", OPT_FLOAT, &g.temperature, "sampling temperature", 0.001, 100},
        {"sample-seed", OPT_U64, &g.sample_seed, "seeds every completion's sampling stream", 1, 0},
        {"eval-problems", OPT_INT, &eval_problems, "held-out problems for the greedy pass@1 (0 = none)", 0, 1 << 30},
        CLI_TRAIN_FLAGS(o, tf),
    };
    int rc = cli_parse("grpo",
                       "--init MODEL_DIR (--data DIR | --train F [--test F]) --out DIR [flags]\n"
                       "exit status: 0 done, 2 bad input, 3 diverged (a loss or gradient became nan/inf)",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    cli_train_apply(&o, &tf);
    if (ts_template_parse(tmpl_name, &g.tmpl)) return cli_lib_error();
    if (!strcmp(algo_name, "grpo")) g.algo = TS_ALGO_GRPO;
    else if (!strcmp(algo_name, "rft")) g.algo = TS_ALGO_RFT;
    else if (!strcmp(algo_name, "ppo")) g.algo = TS_ALGO_PPO;
    else return cli_error("grpo: --algo must be grpo, rft or ppo, got '%s'", algo_name);
    if (g.algo == TS_ALGO_PPO && tf.resume)
        return cli_error("grpo: --algo ppo cannot --resume (the value head is not saved with the checkpoint)");
    if (!strcmp(norm_name, "seq")) g.grpo.norm = TS_GRPO_NORM_SEQUENCE;
    else if (!strcmp(norm_name, "token")) g.grpo.norm = TS_GRPO_NORM_TOKEN;
    else if (!strcmp(norm_name, "drgrpo")) {
        g.grpo.norm = TS_GRPO_NORM_CONSTANT;
        g.grpo.scale_by_std = 0; // Dr. GRPO: no std division either
    } else
        return cli_error("grpo: --norm must be seq, token or drgrpo, got '%s'", norm_name);
    g.grpo.max_len = g.max_new;
    if (!out) return cli_error("grpo: --out is required");
    if (!init) return cli_error("grpo: --init MODEL_DIR is required (with --resume too: it is the reference)");
    if (!data == !prompts_path) return cli_error("grpo: give exactly one of --data DIR or --train FILE");
    if ((rc = cli_train_check("grpo", &o))) return rc;
    if (o.save_every % g.mu || o.stop_after % g.mu)
        return cli_error("grpo: --save-every (%ld) and --stop-after (%ld) must be multiples of --mu (%d): a run "
                         "resumes only where a rollout batch starts",
                         o.save_every, o.stop_after, g.mu);
    if (g.algo == TS_ALGO_RFT && g.grpo.beta > 0) g.grpo.beta = 0; // RFT holds no reference
    char prompts_buf[4096], test_buf[4096], metrics_buf[4096], eval_buf[4096], tok_path[4096];
    if (data) {
        snprintf(prompts_buf, sizeof prompts_buf, "%s/rl_train.jsonl", data);
        prompts_path = prompts_buf;
        if (!test_path) {
            snprintf(test_buf, sizeof test_buf, "%s/test.jsonl", data);
            if (!cli_exists(test_buf)) snprintf(test_buf, sizeof test_buf, "%s/rl_test.jsonl", data);
            if (cli_exists(test_buf)) test_path = test_buf;
        }
    }
    if (!metrics) {
        snprintf(metrics_buf, sizeof metrics_buf, "%s/metrics.csv", out);
        metrics = metrics_buf;
    }
    snprintf(eval_buf, sizeof eval_buf, "%s/eval.csv", out);
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", init);
    o.out_dir = out;
    o.metrics_path = metrics;
    o.tokenizer_json = tok_path;
    g.eval_problems = test_path ? eval_problems : 0;
    g.eval_path = eval_buf;

    ts_model m, ref;
    memset(&ref, 0, sizeof ref);
    int have_ref = g.algo != TS_ALGO_RFT && g.grpo.beta > 0;
    if (ts_checkpoint_load(&m, init, TS_MODEL_TRAIN)) return cli_lib_error();
    if (have_ref && ts_checkpoint_load(&ref, init, TS_MODEL_FROZEN)) {
        ts_model_free(&m);
        return cli_lib_error();
    }
    bpe_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    ts_examples train_set = {0}, test_set = {0};
    ts_rl_prompts prompts = {0};
    rc = 0;
    if (bpe_load(&tok, tok_path) || ts_examples_load(&train_set, prompts_path, 0, 1) ||
        (test_path && ts_examples_load(&test_set, test_path, 0, 1)) ||
        ts_rl_prompts_build(&prompts, &tok, g.tmpl, &train_set)) {
        rc = cli_lib_error();
        goto done;
    }
    if (!o.quiet) {
        long long total, active;
        ts_model_count_params(&m.cfg, &total, &active);
        printf("%s: %lld parameters, %d prompts (longest %d tokens, template %s), %d x %d completions per step, "
               "mu %d, beta %g%s, norm %s, %ld steps, lr %g, %d threads\n",
               algo_name, total, prompts.n, prompts.longest, ts_template_name(g.tmpl), g.P, g.G, g.mu,
               (double)g.grpo.beta, have_ref ? " (reference held)" : " (no reference)", norm_name, o.steps, o.lr,
               ts_num_threads());
    }
    if (!o.quiet && g.algo == TS_ALGO_PPO) {
        int C = m.cfg.hidden_size;
        printf("ppo: the critic is a linear value head on the last hidden state: %d parameters, %zu bytes with its "
               "gradient and Adam moments, plus %zu bytes of values and hidden-state gradient per sampled token "
               "(a separate critic the policy's size would hold %zu bytes of weights, gradients and moments)\n",
               C + 1, (size_t)4 * (C + 1) * sizeof(float), (size_t)(C + 1) * sizeof(float) + sizeof(double),
               (size_t)4 * m.params.numel * sizeof(float));
    }
    ts_train_result res;
    if (ts_grpo_train(&m, have_ref ? &ref : NULL, &tok, &prompts, test_path ? &test_set : NULL, &g, &o, &res)) {
        rc = res.diverged_step ? 3 : 2;
        cli_lib_error();
    } else {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("%s: %ld steps in %.1f s (%.2f s/step), peak memory %.0f MB -> %s\n", algo_name, res.steps_run,
               res.seconds, res.steps_run ? res.seconds / res.steps_run : 0.0, ru.ru_maxrss / 1024.0, out);
    }
done:
    ts_rl_prompts_free(&prompts);
    ts_examples_free(&train_set);
    ts_examples_free(&test_set);
    bpe_free(&tok);
    if (have_ref) ts_model_free(&ref);
    ts_model_free(&m);
    return rc;
}

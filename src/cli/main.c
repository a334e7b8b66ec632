/**
 * @file main.c
 * @brief `tinyseek`: one command, one subcommand per task.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"
#include "core/ops.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"data", cmd_data, "generate the toy arithmetic data sets (chapter 1)"},
    {"tokenizer", cmd_tokenizer, "train, encode and decode with the byte-level BPE (chapter 1)"},
    {"pretrain", cmd_pretrain, "train a model on the toy data or any text (chapter 2)"},
    {"generate", cmd_generate, "complete prompts with the KV-cache decoder (chapter 2)"},
    {"logits", cmd_logits, "write the logits of a token sequence to a .npy file (chapter 2)"},
    {"info", cmd_info, "parameter counts and KV-cache size of a config (chapters 2-5)"},
    {"convert-gqa", cmd_convert_gqa, "mean-pool a checkpoint's key/value heads into fewer (chapter 3)"},
    {"bench-decode", cmd_bench_decode, "KV-cache decode tokens/s as the context grows, as CSV (chapter 3)"},
    {"eval", cmd_eval, "held-out loss at a context length, with or without YaRN (chapter 4)"},
    {"sft", cmd_sft, "supervised fine-tuning on templated pairs, loss on the response only (chapter 7)"},
    {"evaluate", cmd_evaluate, "pass@1, pass@k, maj@k, format rate by difficulty, as CSV/JSON (chapter 7)"},
    {"rejection-sample", cmd_rejection_sample, "keep a model's right, clean samples as SFT pairs (chapter 7)"},
    {"grpo", cmd_grpo, "GRPO (or online RFT) with rule rewards from a base or SFT model (chapter 8)"},
    {"distill", cmd_distill, "distil a frozen teacher's soft targets into a student, response only (chapter 9)"},
    {"dump-grads", cmd_dump, "logits, loss, gradients and AdamW steps of a random model, for the PyTorch twin"},
    {"bench", cmd_bench, "training, prefill and generation tokens/s, GFLOP/s, peak memory"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: tinyseek <command> [flags]   (tinyseek <command> --help for its flags)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nmatmul backend: %s, threads: %d\n", ts_matmul_backend(), ts_num_threads());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    return cli_error("unknown command '%s' (see tinyseek --help)", argv[1]);
}

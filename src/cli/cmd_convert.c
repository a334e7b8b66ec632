/**
 * @file cmd_convert.c
 * @brief `tinyseek convert-gqa`: turn a multi-head (or grouped-query) checkpoint
 *        into one with fewer key/value heads by mean-pooling each group's K and
 *        V projection heads, as the GQA paper (Ainslie et al. 2023) does before
 *        "uptraining".
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "model/checkpoint.h"

int cmd_convert_gqa(int argc, char **argv) {
    const char *model_dir = NULL, *out = NULL;
    int kv_heads = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model_dir, "checkpoint folder to convert (model_type llama: MHA or GQA)", 1, 0},
        {"kv-heads", OPT_INT, &kv_heads, "key/value heads of the new model (must divide the model's)", 1, 1 << 20},
        {"out", OPT_STR, &out, "folder for the converted checkpoint (config.json, model.safetensors, tokenizer.json)", 1, 0},
    };
    int rc = cli_parse("convert-gqa", "--model DIR --kv-heads N --out DIR", argc, argv, opts,
                       (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    if (!model_dir) return cli_error("convert-gqa: --model is required");
    if (!out) return cli_error("convert-gqa: --out is required");
    if (kv_heads == 0) return cli_error("convert-gqa: --kv-heads is required");
    ts_model src, dst;
    if (ts_checkpoint_load(&src, model_dir, 0)) return cli_lib_error();
    if (ts_model_convert_gqa(&dst, &src, kv_heads)) {
        ts_model_free(&src);
        return cli_lib_error();
    }
    char tok[4096];
    struct stat sb;
    snprintf(tok, sizeof tok, "%s/tokenizer.json", model_dir);
    int has_tok = stat(tok, &sb) == 0;
    if (ts_checkpoint_save(&dst, out, has_tok ? tok : NULL)) rc = cli_lib_error();
    else
        printf("convert-gqa: %s (%d key/value heads) -> %s (%d key/value heads, groups of %d query heads; "
               "k_proj/v_proj mean-pooled)\n",
               model_dir, src.cfg.num_key_value_heads, out, kv_heads, dst.cfg.num_attention_heads / kv_heads);
    ts_model_free(&dst);
    ts_model_free(&src);
    return rc;
}

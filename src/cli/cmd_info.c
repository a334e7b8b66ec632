/**
 * @file cmd_info.c
 * @brief `tinyseek info`: parameter counts and KV-cache size of any supported config.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "model/model.h"
#include "model/mtp.h"

static void human(double x, char *buf, size_t cap) {
    const char *unit[] = {"", "K", "M", "G", "T"};
    int u = 0;
    while (x >= 1000 && u < 4) {
        x /= 1000;
        u++;
    }
    snprintf(buf, cap, u ? "%.2f%s" : "%.0f%s", x, unit[u]);
}

int cmd_info(int argc, char **argv) {
    const char *config = NULL;
    int seq = 0, bytes_per = 2;
    cli_opt opts[] = {
        {"seq", OPT_INT, &seq, "context length for the total cache (default max_position_embeddings)", 1, 1 << 30},
        {"bytes", OPT_INT, &bytes_per, "bytes per cached element (2 = BF16 as served, 4 = fp32 as tinyseek runs)", 1, 8},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse("info", "[flags] CONFIG.json|MODEL_DIR", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos,
                       1, &n_pos);
    if (rc) return rc == 1 ? 0 : rc;
    if (n_pos != 1) return cli_error("info: give one config.json or checkpoint folder");
    char path[4096];
    config = pos[0];
    size_t len = strlen(config);
    if (len < 5 || strcmp(config + len - 5, ".json") != 0) {
        snprintf(path, sizeof path, "%s/config.json", config);
        config = path;
    }
    ts_config c;
    if (ts_config_load(&c, config)) return cli_lib_error();
    if (seq == 0) seq = c.max_position_embeddings;
    long long total, active;
    ts_model_count_params(&c, &total, &active);
    char t[32], a[32];
    human((double)total, t, sizeof t);
    human((double)active, a, sizeof a);
    const char *kind = c.arch == TS_ARCH_DEEPSEEK_V3 ? "MLA"
                       : c.num_key_value_heads == c.num_attention_heads ? "MHA"
                       : c.num_key_value_heads == 1 ? "MQA" : "GQA";
    printf("config            %s (model_type %s, attention %s)\n", config, c.model_type, kind);
    printf("layers            %d, hidden %d, heads %d (kv heads %d), vocab %d\n", c.num_hidden_layers, c.hidden_size,
           c.num_attention_heads, c.num_key_value_heads, c.vocab_size);
    printf("parameters        %lld total (%s), %lld activated per token (%s)\n", total, t, active, a);
    if (c.num_nextn_predict_layers > 0) { /* chapter 6 */
        long long mtp = ts_mtp_count_params(&c);
        char m[32];
        human((double)mtp, m, sizeof m);
        printf("MTP modules       %d, %lld parameters (%s) besides the total above (embedding and head shared)\n",
               c.num_nextn_predict_layers, mtp, m);
    }
    if (c.n_routed_experts > 0) /* chapter 5 */
        printf("experts           %d routed (%d per token, %d groups keeping %d) + %d shared, %d wide, in layers %d..%d; "
               "%s scores\n",
               c.n_routed_experts, c.num_experts_per_tok, c.n_group, c.topk_group, c.n_shared_experts,
               c.moe_intermediate_size, c.first_k_dense_replace, c.num_hidden_layers - 1, c.scoring_func);
    long long per = ts_attn_cache_floats(&c, TS_KV_ABSORBED); /* elements per token per layer */
    long long per_token = per * c.num_hidden_layers;
    printf("kv cache          %lld elements per token per layer", per);
    if (c.arch == TS_ARCH_DEEPSEEK_V3)
        printf(" (kv_lora_rank %d + qk_rope_head_dim %d)", c.kv_lora_rank, c.qk_rope_head_dim);
    else
        printf(" (2 x %d kv heads x head_dim %d)", c.num_key_value_heads, c.head_dim);
    printf("\n                  %lld elements per token (all %d layers) = %lld bytes at %d bytes/element\n", per_token,
           c.num_hidden_layers, per_token * bytes_per, bytes_per);
    char tot[32];
    human((double)per_token * bytes_per * seq, tot, sizeof tot);
    printf("                  %sB for one sequence of %d tokens\n", tot, seq);
    /* What tinyseek really allocates (fp32), measured on a one-token cache made for this config. */
    ts_kvcache kv;
    if (ts_kvcache_create_for(&kv, &c, 1, 1, TS_KV_ABSORBED)) return cli_lib_error();
    size_t allocated = ts_kvcache_bytes_per_token(&kv);
    ts_kvcache_free(&kv);
    printf("                  allocated by tinyseek: %zu bytes per token (fp32, %s)\n", allocated,
           allocated == (size_t)per_token * sizeof(float) ? "= the formula x 4" : "DIFFERS from the formula x 4");
    if (c.arch == TS_ARCH_DEEPSEEK_V3) { /* chapter 4: DeepSeek-V2 §2.1.4, Table 1, with this config's numbers */
        long long nh = c.num_attention_heads, dh = c.qk_nope_head_dim, l = c.num_hidden_layers;
        long long dc = c.kv_lora_rank, dr = c.qk_rope_head_dim, mha = 2 * nh * dh * l, mla = (dc + dr) * l;
        printf("DeepSeek-V2 Table 1, KV cache per token (elements, all layers; d_h = qk_nope_head_dim):\n");
        printf("  MHA  2 n_h d_h l     = 2 x %lld x %lld x %lld = %lld\n", nh, dh, l, mha);
        printf("  GQA  2 n_g d_h l     = %lld per group of heads\n", 2 * dh * l);
        printf("  MQA  2 d_h l         = 2 x %lld x %lld = %lld\n", dh, l, 2 * dh * l);
        printf("  MLA  (d_c + d_h^R) l = (%lld + %lld) x %lld = %lld = %.2f d_h l: %.2f%% of MHA (%.1fx less), "
               "as much as GQA with %.2f groups\n",
               dc, dr, l, mla, (double)(dc + dr) / dh, 100.0 * mla / mha, (double)mha / mla, (double)(dc + dr) / (2 * dh));
        ts_kvcache naive;
        if (ts_kvcache_create_for(&naive, &c, 1, 1, TS_KV_NAIVE)) return cli_lib_error();
        printf("  tinyseek allocates %zu bytes per token absorbed (the latent), %zu naive (full per-head keys and values)\n",
               allocated, ts_kvcache_bytes_per_token(&naive));
        ts_kvcache_free(&naive);
    }
    return 0;
}

/**
 * @file mla_ref.h
 * @brief Appendix A's reference: the library's own absorbed decode
 *        (mla_absorbed_attention() in src/model/mla.c, chapter 4) run on the
 *        numbers the CUDA harness (src/cuda/mla_decode.cu) gives its kernels.
 *        Plain C, compiled by gcc and linked with libtinyseek, so the harness
 *        (C++) never includes the library's headers.
 */
#ifndef TS_CUDA_MLA_REF_H
#define TS_CUDA_MLA_REF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A model's attention shape, read from its config.json. */
typedef struct {
    int H;       /**< num_attention_heads */
    int dc;      /**< kv_lora_rank: the values' width, the output's */
    int dr;      /**< qk_rope_head_dim: the shared RoPE key's width */
    int dn;      /**< qk_nope_head_dim */
    int dv;      /**< v_head_dim */
    float scale; /**< the softmax scale mla_softmax_scale() gives (YaRN's mscale² included) */
} appA_shape;

/**
 * @brief Read @p config_path (a Hugging Face DeepSeek-V3-style config.json) into
 * @p s. Returns 0, or -1 with one line naming the file on stderr.
 */
int appA_shape_load(appA_shape *s, const char *config_path);

/**
 * @brief The absorbed decode of B sequences of lengths len[b] (0 allowed) over
 * @p cache (B, max_T, dc+dr), by the library's mla_absorbed_attention(), with
 * per-head queries (B, H·(dn+dr)) and kv_b_proj (H·(dn+dv), dc) drawn from @p seed.
 * Writes qabs (B, H, dc+dr), the absorbed queries the library formed [W_UKᵀ q_nope; q_rope]
 * (drawn at random for an empty sequence, which the library never decodes);
 * olat (B, H, dc), the attention output in the latent space (0 for an empty sequence);
 * lse (B, H), log Σ_t exp(score), computed here in double (−∞ for an empty sequence).
 * Reads only rows t < len[b] of the cache. Returns 0, or -1 when out of memory.
 */
int appA_reference(const char *config_path, int B, int max_T, const int *len, const float *cache, uint64_t seed,
                   float *qabs, float *olat, float *lse);

#ifdef __cplusplus
}
#endif

#endif

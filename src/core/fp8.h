/**
 * @file fp8.h
 * @brief Simulated FP8 training numerics (appendix B; DeepSeek-V3 §3.3): the E4M3
 * codec, fine-grained scaled quantisation, and GEMMs whose inputs are FP8.
 *
 * Nothing here runs in 8 bits on the CPU: values are *rounded* exactly as an
 * FP8 Tensor Core would see them, then multiplied in float32, so a training run
 * shows the effect of FP8 on the loss without the hardware.
 *
 * **E4M3** (the OCP "E4M3FN" format DeepSeek-V3 uses): 1 sign bit, 4 exponent
 * bits with bias 7, 3 mantissa bits, no infinities. A code `s eeee mmm` is
 *   - `(-1)^s · 2^(e-7) · (1 + m/8)` for e = 1..15 (normal),
 *   - `(-1)^s · 2^-6 · (m/8)` for e = 0 (subnormal: 2^-9 is the smallest),
 *   - NaN for `s 1111 111` (0x7F, 0xFF), so the largest finite value is
 *     `0 1111 110` = 1.75·2^8 = 448.
 *
 * **Scales.** An FP8 number has 4 significant bits but a range of only 2^-9..448,
 * so every tensor is divided by a scale before encoding: scale = amax/448, with
 * amax the current max-abs of the group of elements sharing that scale, so the
 * group's largest element lands on ±448 and the rest keep 4 significant bits as
 * long as they stay above 2^-6·scale. V3's groups: 1×128 tiles of activations
 * (one token, 128 channels) and 128×128 blocks of weights. One outlier then only
 * coarsens its own tile; with one scale per tensor (TS_FP8_PER_TENSOR) it pushes
 * every other element of the tensor towards the subnormals.
 *
 * **GEMM.** ts_fp8_gemm() computes C = A·Bᵀ with both operands quantised along
 * K (the reduction dimension): products of FP8 values are summed over chunks of
 * 128 along K (what the Tensor Core accumulates by itself, in limited precision),
 * and each chunk's sum is *promoted*: multiplied by the two scales of its tiles
 * and added into a float32 accumulator. Promotion every 128 elements is what
 * makes per-tile scales possible (each chunk lies inside one tile of each
 * operand) and bounds the error of the limited-precision accumulator.
 *
 * Which tiling applies where (shapes as in matmul_forward(): weight (OC,C)):
 *
 * | product | as C = A·Bᵀ | A (rows × K) | B (rows × K) |
 * |---|---|---|---|
 * | forward  `out = inp·weightᵀ` | K = C  | inp (N,C), 1×128 tiles | weight (OC,C), 128×128 blocks |
 * | data grad `dinp = dout·weight` | K = OC | dout (N,OC), 1×128 tiles | weightᵀ (C,OC), 128×128 blocks |
 * | weight grad `dweight = doutᵀ·inp` | K = N | doutᵀ (OC,N), 1×128 tiles | inpᵀ (C,N), 1×128 tiles |
 *
 * A 128×128 block of the weight is a 128×128 block of its transpose, so the
 * weight is quantised once and serves both the forward and the data gradient
 * (ts_fp8_transpose()). The weight gradient reduces over tokens, so both of its
 * operands are activations quantised along the token axis: tiles of 128 tokens ×
 * 1 channel, V3's "128×1" tiles. (V3 stores the forward's activations in FP8 and
 * re-tiles them for this product; here the float32 activation is quantised
 * afresh, which saves one rounding.) Master weights, gradients and the GEMM
 * outputs stay float32; backward passes are straight-through: the quantisation
 * is not differentiated, the FP8 GEMMs just replace the float32 ones.
 */
#ifndef TS_FP8_H
#define TS_FP8_H

#include <stdint.h>

#include "core/common.h"

/** @brief Largest finite E4M3 value, 1.75·2^8. */
#define TS_E4M3_MAX 448.0f
/** @brief E4M3 code of +448 (`0 1111 110`); OR 0x80 for -448. */
#define TS_E4M3_MAX_CODE 0x7E
/** @brief E4M3 code of NaN (`0 1111 111`); 0xFF is NaN too. */
#define TS_E4M3_NAN_CODE 0x7F
/** @brief V3's tile width and promotion interval: 128 elements along K. */
#define TS_FP8_TILE 128

/**
 * @brief float → E4M3 code, rounding to nearest with ties to even.
 *
 * Finite values beyond ±448 saturate to ±448 (as a "satfinite" conversion does),
 * and so do ±Inf: E4M3 has no infinity, and an overflowing activation is better
 * clipped than turned into NaN (the scales keep ordinary values below 448 anyway).
 * NaN gives the NaN code with the input's sign bit. ±0 keep their sign. Values of
 * magnitude at most 2^-10 (half the smallest subnormal) round to ±0.
 * Assumes the default floating-point rounding mode (to nearest).
 */
uint8_t ts_e4m3_encode(float x);

/** @brief ts_e4m3_encode() on the float's bits, as the quantiser encodes (one value through its
 *  branchless row encoder): the same code for every float (a test compares the two on a stride
 *  through all 2^32 bit patterns), and it vectorises, since it rounds by integer addition instead
 *  of frexpf and rintf. */
uint8_t ts_e4m3_encode_bits(float x);

/** @brief E4M3 code → float (exact: every E4M3 value is a float); 0x7F and 0xFF give NaN. */
float ts_e4m3_decode(uint8_t code);

/** @brief How elements share scales. */
typedef enum {
    TS_FP8_FINE = 0,       /**< V3: 1×128 activation tiles, 128×128 weight blocks */
    TS_FP8_PER_TENSOR = 1  /**< one scale for the whole tensor (the comparison) */
} ts_fp8_scaling;

/** @brief The knobs of the simulation; ts_fp8_default() gives V3's. */
typedef struct {
    ts_fp8_scaling scaling; /**< fine-grained tiles or one scale per tensor */
    /** Elements of K summed before each promotion to float32 (V3: 128). It must
     * divide the tile width along K (128) unless the tile spans all of K (per
     * tensor); 0 means never promote (one chunk of all K: per tensor only). */
    int promote;
    /** Significand bits (including the leading one) kept by the running sum inside
     * a chunk, rounded to nearest even after every addition, to imitate the Tensor
     * Core's limited-precision accumulator (V3 measured about 14 bits on H800);
     * 0 means float32 (24 bits). */
    int acc_bits;
    /** Round each scale up to a power of two (as the UE8M0 scales of
     * DeepSeek-V3.1's DeepGEMM): dequantisation is then exact, at the cost of
     * mapping a tile's max to (224, 448] instead of exactly 448. */
    int pow2_scales;
} ts_fp8_config;

/** @brief V3's settings: fine-grained tiles, promotion every 128, float32 chunk sums, scale = amax/448. */
ts_fp8_config ts_fp8_default(void);

/**
 * @brief A matrix quantised to E4M3: codes and one float scale per tile.
 * Element (r,c) is ts_e4m3_decode(codes[r·cols + c]) · scales[(r/tile_rows)·tiles_c + c/tile_cols],
 * with tiles_c = ceil(cols/tile_cols); the last tiles of a row or column are
 * ragged (smaller) when the shape is not a multiple of the tile.
 */
typedef struct {
    int rows;        /**< rows of the matrix */
    int cols;        /**< columns of the matrix (K, for a GEMM operand) */
    int tile_rows;   /**< rows per tile: 1 (activation), 128 (weight) or rows (per tensor) */
    int tile_cols;   /**< columns per tile: 128, or cols (per tensor) */
    uint8_t *codes;  /**< (rows, cols) E4M3 codes, row-major */
    float *scales;   /**< (ceil(rows/tile_rows), ceil(cols/tile_cols)) scales; 0 for an all-zero tile */
} ts_fp8_matrix;

/**
 * @brief Allocate @p q for a (rows, cols) matrix with (tile_rows, tile_cols) tiles.
 * Tile sizes larger than the matrix are clipped to it (so 128×128 blocks of a
 * 64×64 matrix are one 64×64 tile). @return TS_ERR_ARG for non-positive sizes,
 * TS_ERR_NOMEM; on failure @p q holds nothing to free.
 */
ts_status ts_fp8_matrix_alloc(ts_fp8_matrix *q, int rows, int cols, int tile_rows, int tile_cols);

/** @brief Free what ts_fp8_matrix_alloc() allocated (NULL-safe, idempotent). */
void ts_fp8_matrix_free(ts_fp8_matrix *q);

/** @brief Number of tiles along the columns, ceil(cols/tile_cols). */
int ts_fp8_tiles_c(const ts_fp8_matrix *q);

/**
 * @brief Quantise a float matrix into @p q (already allocated with its shape and tiles).
 * Reads op(x) (q->rows, q->cols): x itself, row-major with leading dimension @p ld,
 * or, if @p trans, the transpose of x stored (q->cols, q->rows) with leading
 * dimension @p ld. Each tile's scale is its max-abs / 448 (rounded up to a power
 * of two with @p pow2_scales); a tile of zeros gets scale 0 and zero codes.
 * Inputs should be finite (an Inf makes its tile's scale Inf).
 */
void ts_fp8_quantize(ts_fp8_matrix *q, const float *x, int ld, int trans, int pow2_scales);

/** @brief out (rows, cols) = the values @p q stands for, code · tile scale (rounded to float). */
void ts_fp8_dequantize(const ts_fp8_matrix *q, float *out);

/**
 * @brief dst = srcᵀ, codes and scale grid transposed (allocates @p dst).
 * For 128×128 blocks this *is* the quantisation of the transposed matrix.
 */
ts_status ts_fp8_transpose(ts_fp8_matrix *dst, const ts_fp8_matrix *src);

/**
 * @brief C (M,N) = A·Bᵀ, or C += A·Bᵀ if @p accumulate; A (M,K) and B (N,K) quantised
 * along K. Products of decoded codes are summed over chunks of cfg->promote
 * elements (rounded to cfg->acc_bits after each addition when set), and each
 * chunk sum, times the product of the two tiles' scales, is added into a float32
 * accumulator (cfg->scaling and cfg->pow2_scales are not used here: they belong
 * to the quantisation). Threads split the rows of C; results do not depend on
 * the thread count.
 * @return TS_ERR_ARG if the K sizes differ or a chunk would straddle two tiles,
 *         TS_ERR_NOMEM.
 */
ts_status ts_fp8_gemm(float *C, int ldc, const ts_fp8_matrix *A, const ts_fp8_matrix *B,
                      int accumulate, const ts_fp8_config *cfg);

/** @brief ts_fp8_gemm() as three plain loops, one output at a time (the reference; same bits). */
ts_status ts_fp8_gemm_ref(float *C, int ldc, const ts_fp8_matrix *A, const ts_fp8_matrix *B,
                          int accumulate, const ts_fp8_config *cfg);

/**
 * @brief FP8 linear layer: out = inp·weightᵀ (+ bias), out (N,OC), inp (N,C), weight (OC,C),
 * bias (OC) or NULL, as matmul_forward() computes in float32; the product's
 * inputs are quantised per the table in fp8.h (the bias is added in float32).
 * @return TS_ERR_NOMEM or TS_ERR_ARG (a bad @p cfg); @p out is then untouched.
 */
ts_status fp8_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                             int N, int C, int OC, const ts_fp8_config *cfg);

/**
 * @brief Backward of fp8_matmul_forward() (straight-through): dinp += dout·weight and
 * dweight += doutᵀ·inp as FP8 GEMMs, dbias += Σ dout in float32. Any of dinp,
 * dweight, dbias may be NULL. @return TS_ERR_NOMEM or TS_ERR_ARG; the gradients
 * are then untouched.
 */
ts_status fp8_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, int N, int C, int OC,
                              const ts_fp8_config *cfg);

#endif

/*
 * Appendix A: the decode attention of absorbed MLA over the latent cache, as
 * FlashMLA computes it, in five numbered versions (llm.c's dev/cuda layout:
 * one file, the version chosen on the command line, a CPU reference, timing).
 *
 *   make cuda                           compile (nvcc, one architecture: CUDA_ARCH, default sm_90)
 *   make cuda-run                       every version on every shape, runs/appA/results.csv
 *   build/release/cuda/mla_decode [V]   V = 1..5 (0 or nothing: all) [--csv FILE] [--reps N]
 *            [--config PATH --B N --T N]  one shape instead of the built-in list
 *
 * Inputs, per decode step of B sequences (one new token each):
 *   q      (B, H, LAT)      absorbed queries [W_UKᵀ q_nope; q_rope], LAT = dc + dr
 *   cache  (B, max_T, LAT)  the latent rows [c_kv; k_rope]; rows t >= len[b] are not part of the sequence
 *   len    (B)              positions per sequence (0 allowed)
 *   scale                   the softmax scale, explicit: V3's is (dn + dr)^(-1/2)·mscale², not LAT^(-1/2)
 * Outputs:
 *   out    (B, H, dc)       Σ_t p_t c_t, the attention output in the latent space (W_UV comes after)
 *   lse    (B, H)           log Σ_t exp(score_t), −∞ for an empty sequence
 *
 * Every version is checked against the library's own absorbed decode
 * (mla_absorbed_attention(), chapter 4, via src/cuda/mla_ref.c) on the same
 * numbers, with the unused cache rows filled with NaN so that a read past a
 * sequence's length shows. The arithmetic the versions share (the online
 * softmax, the split-KV combine) is in mla_decode_math.h, which the CPU test
 * tests/test_appA_decode_math.c compiles too.
 */
#ifndef TS_CUDA_EMU // mla_decode_emu.cpp compiles the kernels on the CPU, with its own CUDA vocabulary
#include <cuda_pipeline.h>
#include <cuda_runtime.h>
#endif

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/mla_decode_math.h"
#include "cuda/mla_ref.h"

#define CUDA_CHECK(call)                                                                                  \
    do {                                                                                                  \
        cudaError_t err_ = (call);                                                                        \
        if (err_ != cudaSuccess) {                                                                        \
            fprintf(stderr, "mla_decode: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                    \
                    cudaGetErrorString(err_));                                                            \
            exit(1);                                                                                      \
        }                                                                                                 \
    } while (0)

/** Everything a version needs; the split-KV versions also use the part_ buffers. */
struct DecodeArgs {
    const float *q;     ///< (B, H, LAT) absorbed queries
    const float *cache; ///< (B, max_T, LAT) latent rows
    const int *len;     ///< (B) positions per sequence
    float *out;         ///< (B, H, dc)
    float *lse;         ///< (B, H)
    float *part_out;    ///< (B, H, nsplit, dc): each split's output, normalised over the split
    float *part_lse;    ///< (B, H, nsplit): each split's log-sum-exp
    int B;              ///< sequences
    int H;              ///< heads
    int dc;             ///< kv_lora_rank: the output's width
    int dr;             ///< qk_rope_head_dim
    int max_T;          ///< rows per sequence in the cache
    int nsplit;         ///< splits per sequence (versions 4 and 5)
    float scale;        ///< softmax scale
};

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ------------------------------------------------------------------ */
/* Version 1: one thread per (sequence, head)                          */
/* ------------------------------------------------------------------ */

//! [v1]
// The C loop moved to the GPU: a thread takes one head of one sequence and walks
// its cache twice (the largest score, then the weighted sum). The H threads of
// a sequence read the same rows, and each keeps its dc running sums in global
// memory, one row per thread: every position costs dc loads and stores.
__global__ void decode_v1(DecodeArgs a) {
    int i = blockIdx.x * blockDim.x + threadIdx.x; // (sequence, head) = (i / H, i % H)
    if (i >= a.B * a.H) return;
    int b = i / a.H, n = a.len[b], LAT = a.dc + a.dr;
    const float *q = a.q + (size_t)i * LAT;
    const float *c = a.cache + (size_t)b * a.max_T * LAT;
    float *o = a.out + (size_t)i * a.dc;
    float m = -INFINITY;
    for (int t = 0; t < n; t++) m = fmaxf(m, ts_latent_score(q, c + (size_t)t * LAT, LAT, a.scale));
    for (int j = 0; j < a.dc; j++) o[j] = 0.0f;
    float l = 0.0f;
    for (int t = 0; t < n; t++) {
        const float *ct = c + (size_t)t * LAT;
        float p = expf(ts_latent_score(q, ct, LAT, a.scale) - m);
        l += p;
        for (int j = 0; j < a.dc; j++) o[j] += p * ct[j]; // the values are the first dc columns of the row
    }
    float inv = n > 0 ? 1.0f / l : 0.0f;
    for (int j = 0; j < a.dc; j++) o[j] *= inv;
    a.lse[i] = n > 0 ? m + logf(l) : -INFINITY;
}
//! [v1]

/* ------------------------------------------------------------------ */
/* Version 2: one block per (sequence, head), online softmax           */
/* ------------------------------------------------------------------ */

constexpr int V2_THREADS = 128; // 4 warps
constexpr int V2_TILE = 32;     // positions per tile
constexpr int V2_ACC = 8;       // output columns per thread: dc <= V2_ACC · V2_THREADS

//! [v2]
// A block per head: the warps share out the tile's dot products (lanes split
// the LAT columns), thread 0 folds the tile into the online softmax, and each
// thread keeps a few output columns in registers, rescaled by α once per tile.
// One pass over the cache; but the H blocks of a sequence each read all of it.
__global__ void decode_v2(DecodeArgs a) {
    extern __shared__ float smem[];
    int LAT = a.dc + a.dr, bh = blockIdx.x, b = bh / a.H, n = a.len[b];
    int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nwarps = blockDim.x / 32;
    float *qs = smem;      // (LAT) this head's query
    float *s = smem + LAT; // (V2_TILE) the tile's scores, then its p_t
    float &alpha_s = s[V2_TILE], &inv_s = s[V2_TILE + 1]; // thread 0's α and 1/l, read by all
    for (int k = tid; k < LAT; k += blockDim.x) qs[k] = a.q[(size_t)bh * LAT + k];
    const float *c = a.cache + (size_t)b * a.max_T * LAT;
    ts_softmax_state st; // used by thread 0
    ts_softmax_init(&st);
    float acc[V2_ACC];
#pragma unroll
    for (int k = 0; k < V2_ACC; k++) acc[k] = 0.0f;
    __syncthreads();
    for (int t0 = 0; t0 < n; t0 += V2_TILE) {
        int nt = min(V2_TILE, n - t0);
        for (int t = warp; t < nt; t += nwarps) {
            const float *ct = c + (size_t)(t0 + t) * LAT;
            float d = 0.0f;
            for (int k = lane; k < LAT; k += 32) d += qs[k] * ct[k];
            d = warp_sum(d);
            if (lane == 0) s[t] = a.scale * d;
        }
        __syncthreads();
        if (tid == 0) alpha_s = ts_softmax_tile(&st, s, nt);
        __syncthreads();
        float alpha = alpha_s;
#pragma unroll
        for (int k = 0; k < V2_ACC; k++) {
            int j = tid + k * V2_THREADS;
            if (j < a.dc) {
                float v = acc[k] * alpha;
                for (int t = 0; t < nt; t++) v += s[t] * c[(size_t)(t0 + t) * LAT + j];
                acc[k] = v;
            }
        }
        __syncthreads(); // s is overwritten by the next tile
    }
    if (tid == 0) inv_s = ts_softmax_finish(&st, &a.lse[bh]);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < V2_ACC; k++) {
        int j = tid + k * V2_THREADS;
        if (j < a.dc) a.out[(size_t)bh * a.dc + j] = acc[k] * inv_s;
    }
}
//! [v2]

/* ------------------------------------------------------------------ */
/* Versions 3 and 4: one block per (sequence, group of heads)          */
/* ------------------------------------------------------------------ */

constexpr int G_THREADS = 256; // 8 warps
constexpr int G_TILE = 16;     // positions per tile
constexpr int G_HEADS = 16;    // heads per block at most
constexpr int G_ACC = 32;      // output floats per thread: heads · dc <= G_ACC · G_THREADS
constexpr int MAX_SPLITS = 64;

// Heads per block for a shape: as many as fit G_HEADS and the accumulators.
static int group_heads(int H, int dc) {
    int hg = H < G_HEADS ? H : G_HEADS;
    while (hg > 1 && hg * dc > G_ACC * G_THREADS) hg--;
    return hg;
}

//! [v3-group]
// Heads [h0, h0 + hg) of sequence b over positions [t0, t1). Each tile of
// G_TILE cache rows is read from global memory once, into shared memory, and
// used by every head of the group: for V3's 128 heads in groups of 16, the
// cache is read 8 times instead of 128. Writes each head's output, normalised
// over [t0, t1), to out + h·out_stride and its log-sum-exp to lse[h·lse_stride].
__device__ void group_attention(const DecodeArgs &a, int b, int h0, int hg, int t0, int t1, float *out,
                                size_t out_stride, float *lse, int lse_stride) {
    extern __shared__ float smem[];
    int LAT = a.dc + a.dr, tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nwarps = blockDim.x / 32;
    float *qs = smem;                     // (hg, LAT) the group's queries
    float *tile = qs + hg * LAT;          // (G_TILE, LAT) cache rows
    float *s = tile + G_TILE * LAT;       // (hg, G_TILE) scores, then p_t
    float *alpha = s + hg * G_TILE;       // (hg)
    float *inv = alpha + hg;              // (hg)
    for (int k = tid; k < hg * LAT; k += blockDim.x) qs[k] = a.q[((size_t)b * a.H + h0) * LAT + k];
    const float *c = a.cache + (size_t)b * a.max_T * LAT;
    ts_softmax_state st; // head tid's, for tid < hg
    ts_softmax_init(&st);
    float acc[G_ACC]; // element e = tid + k·G_THREADS of the (hg, dc) output
#pragma unroll
    for (int k = 0; k < G_ACC; k++) acc[k] = 0.0f;
    for (int r0 = t0; r0 < t1; r0 += G_TILE) {
        int nt = min(G_TILE, t1 - r0);
        // rows r0 .. r0+nt are contiguous: one coalesced copy
        for (int k = tid; k < nt * LAT; k += blockDim.x) tile[k] = c[(size_t)r0 * LAT + k];
        __syncthreads();
        for (int p = warp; p < hg * nt; p += nwarps) { // (head, row) pairs, one warp each
            int h = p / nt, t = p % nt;
            float d = 0.0f;
            for (int k = lane; k < LAT; k += 32) d += qs[h * LAT + k] * tile[t * LAT + k];
            d = warp_sum(d);
            if (lane == 0) s[h * G_TILE + t] = a.scale * d;
        }
        __syncthreads();
        if (tid < hg) alpha[tid] = ts_softmax_tile(&st, s + tid * G_TILE, nt);
        __syncthreads();
#pragma unroll
        for (int k = 0; k < G_ACC; k++) {
            int e = tid + k * G_THREADS, h = e / a.dc, j = e % a.dc;
            if (h < hg) {
                float v = acc[k] * alpha[h];
                for (int t = 0; t < nt; t++) v += s[h * G_TILE + t] * tile[t * LAT + j];
                acc[k] = v;
            }
        }
        __syncthreads(); // tile and s are overwritten next
    }
    if (tid < hg) inv[tid] = ts_softmax_finish(&st, &lse[(size_t)tid * lse_stride]);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < G_ACC; k++) {
        int e = tid + k * G_THREADS, h = e / a.dc, j = e % a.dc;
        if (h < hg) out[h * out_stride + j] = acc[k] * inv[h];
    }
}
//! [v3-group]

// grid (groups, B): the whole sequence in one block
__global__ void decode_v3(DecodeArgs a, int hg) {
    int b = blockIdx.y, h0 = blockIdx.x * hg, n = a.len[b];
    int hgb = min(hg, a.H - h0);
    group_attention(a, b, h0, hgb, 0, n, a.out + ((size_t)b * a.H + h0) * a.dc, a.dc, a.lse + (size_t)b * a.H + h0, 1);
}

//! [v4-split]
// grid (nsplit, groups, B): split i of each sequence gets its own block, so a
// batch of a few long sequences still fills every SM. Each split writes a
// partial output and its log-sum-exp; combine() merges them.
__global__ void decode_v4(DecodeArgs a, int hg) {
    int split = blockIdx.x, b = blockIdx.z, h0 = blockIdx.y * hg, t0, t1;
    int hgb = min(hg, a.H - h0);
    ts_split_range(a.len[b], a.nsplit, split, &t0, &t1);
    size_t row = (size_t)b * a.H + h0; // the group's first (sequence, head)
    group_attention(a, b, h0, hgb, t0, t1, a.part_out + (row * a.nsplit + split) * a.dc, (size_t)a.nsplit * a.dc,
                    a.part_lse + row * a.nsplit + split, a.nsplit);
}

// grid (B·H): out = Σ_i exp(lse_i − lse) out_i, lse = log Σ_i exp(lse_i)
__global__ void combine(DecodeArgs a) {
    extern __shared__ float smem[];
    float *w = smem, &lse_s = smem[a.nsplit]; // (nsplit) the splits' weights, then the merged lse
    int bh = blockIdx.x;
    const float *pl = a.part_lse + (size_t)bh * a.nsplit;
    if (threadIdx.x == 0) lse_s = ts_lse_merge(pl, a.nsplit);
    __syncthreads();
    for (int i = threadIdx.x; i < a.nsplit; i += blockDim.x) w[i] = ts_split_weight(pl[i], lse_s);
    __syncthreads();
    for (int j = threadIdx.x; j < a.dc; j += blockDim.x) {
        float v = 0.0f;
        for (int i = 0; i < a.nsplit; i++) v += w[i] * a.part_out[((size_t)bh * a.nsplit + i) * a.dc + j];
        a.out[(size_t)bh * a.dc + j] = v;
    }
    if (threadIdx.x == 0) a.lse[bh] = lse_s;
}
//! [v4-split]

/* ------------------------------------------------------------------ */
/* Version 5: split-KV, 16-byte loads, double-buffered tiles           */
/* ------------------------------------------------------------------ */

// Issue the asynchronous copy of rows [r0, r0 + nt) into tile (16 bytes per copy).
__device__ __forceinline__ void load_tile_async(float4 *tile, const float *c, int r0, int nt, int LAT) {
    const float4 *src = reinterpret_cast<const float4 *>(c + (size_t)r0 * LAT);
    for (int k = threadIdx.x; k < nt * LAT / 4; k += blockDim.x) __pipeline_memcpy_async(&tile[k], &src[k], 16);
    __pipeline_commit();
}

//! [v5]
// Version 4's work with the memory traffic reshaped: cache rows move as
// float4 (16 bytes, LAT and dc multiples of 4) by cp.async, straight from
// global to shared memory without passing through registers, and into two
// tile buffers: while the block computes on tile k, tile k + 1 is on its way.
__global__ void decode_v5(DecodeArgs a, int hg) {
    extern __shared__ float4 smem4[];
    int split = blockIdx.x, b = blockIdx.z, h0 = blockIdx.y * hg, t0, t1;
    hg = min(hg, a.H - h0);
    ts_split_range(a.len[b], a.nsplit, split, &t0, &t1);
    int LAT = a.dc + a.dr, L4 = LAT / 4, D4 = a.dc / 4;
    int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nwarps = blockDim.x / 32;
    float4 *qs = smem4;                              // (hg, L4)
    float4 *tiles = qs + hg * L4;                    // 2 × (G_TILE, L4): buffer i at tiles + i·G_TILE·L4
    float *s = reinterpret_cast<float *>(qs + hg * L4 + 2 * G_TILE * L4); // (hg, G_TILE)
    float *alpha = s + hg * G_TILE, *inv = alpha + hg;
    const float4 *q4 = reinterpret_cast<const float4 *>(a.q + ((size_t)b * a.H + h0) * LAT);
    for (int k = tid; k < hg * L4; k += blockDim.x) qs[k] = q4[k];
    const float *c = a.cache + (size_t)b * a.max_T * LAT;
    ts_softmax_state st;
    ts_softmax_init(&st);
    float4 acc[G_ACC / 4]; // float4 element e = tid + k·G_THREADS of the (hg, dc/4) output
#pragma unroll
    for (int k = 0; k < G_ACC / 4; k++) acc[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    int ntiles = (t1 - t0 + G_TILE - 1) / G_TILE;
    if (ntiles > 0) load_tile_async(tiles, c, t0, min(G_TILE, t1 - t0), LAT);
    for (int it = 0; it < ntiles; it++) {
        int r0 = t0 + it * G_TILE, nt = min(G_TILE, t1 - r0);
        if (it + 1 < ntiles) { // prefetch the next tile into the other buffer, then wait for this one
            load_tile_async(tiles + ((it + 1) & 1) * G_TILE * L4, c, r0 + G_TILE, min(G_TILE, t1 - r0 - G_TILE), LAT);
            __pipeline_wait_prior(1);
        } else {
            __pipeline_wait_prior(0);
        }
        __syncthreads();
        const float4 *tile = tiles + (it & 1) * G_TILE * L4;
        for (int p = warp; p < hg * nt; p += nwarps) {
            int h = p / nt, t = p % nt;
            float d = 0.0f;
            for (int k = lane; k < L4; k += 32) {
                float4 x = qs[h * L4 + k], y = tile[t * L4 + k];
                d += x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
            }
            d = warp_sum(d);
            if (lane == 0) s[h * G_TILE + t] = a.scale * d;
        }
        __syncthreads();
        if (tid < hg) alpha[tid] = ts_softmax_tile(&st, s + tid * G_TILE, nt);
        __syncthreads();
#pragma unroll
        for (int k = 0; k < G_ACC / 4; k++) {
            int e = tid + k * G_THREADS, h = e / D4, j = e % D4;
            if (h < hg) {
                float al = alpha[h];
                float4 v = make_float4(acc[k].x * al, acc[k].y * al, acc[k].z * al, acc[k].w * al);
                for (int t = 0; t < nt; t++) {
                    float p = s[h * G_TILE + t];
                    float4 y = tile[t * L4 + j];
                    v.x += p * y.x, v.y += p * y.y, v.z += p * y.z, v.w += p * y.w;
                }
                acc[k] = v;
            }
        }
        __syncthreads(); // this buffer is the target of the prefetch two tiles on
    }
    size_t row = (size_t)b * a.H + h0;
    if (tid < hg) inv[tid] = ts_softmax_finish(&st, &a.part_lse[(row + tid) * a.nsplit + split]);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < G_ACC / 4; k++) {
        int e = tid + k * G_THREADS, h = e / D4, j = e % D4;
        if (h < hg) {
            float iv = inv[h];
            float4 v = make_float4(acc[k].x * iv, acc[k].y * iv, acc[k].z * iv, acc[k].w * iv);
            reinterpret_cast<float4 *>(a.part_out + ((row + h) * a.nsplit + split) * a.dc)[j] = v;
        }
    }
}
//! [v5]

/* ------------------------------------------------------------------ */
/* Host: launch, check, time                                           */
/* ------------------------------------------------------------------ */

static const int NVERSIONS = 5;

// Splits per sequence for versions 4 and 5: enough blocks for two waves over
// the SMs, each split at least 4 tiles long.
static int choose_splits(int B, int groups, int max_len, int num_sms) {
    int blocks = B * groups;
    int nsplit = (2 * num_sms + blocks - 1) / blocks;
    int most = (max_len + 4 * G_TILE - 1) / (4 * G_TILE);
    if (nsplit > most) nsplit = most;
    if (nsplit > MAX_SPLITS) nsplit = MAX_SPLITS;
    return nsplit < 1 ? 1 : nsplit;
}

static size_t group_smem(int hg, int LAT, int tiles) {
    return ((size_t)hg * LAT + (size_t)tiles * G_TILE * LAT + (size_t)hg * G_TILE + 2 * hg) * sizeof(float);
}

// Why a version cannot run this shape, or NULL.
static const char *unsupported(int v, int H, int dc, int dr, size_t smem_optin) {
    int LAT = dc + dr, hg = group_heads(H, dc);
    if (v == 2 && dc > V2_ACC * V2_THREADS) return "dc > V2_ACC * V2_THREADS";
    if (v >= 3 && hg * dc > G_ACC * G_THREADS) return "one head's dc exceeds the accumulators";
    if (v >= 3 && group_smem(hg, LAT, v == 5 ? 2 : 1) > smem_optin) return "not enough shared memory";
    if (v == 5 && (LAT % 4 || dc % 4)) return "16-byte loads need dc and dr multiples of 4";
    return NULL;
}

#ifndef TS_CUDA_EMU
static void launch(int v, const DecodeArgs &a) {
    int LAT = a.dc + a.dr, hg = group_heads(a.H, a.dc), groups = (a.H + hg - 1) / hg;
    switch (v) {
    case 1:
        decode_v1<<<(a.B * a.H + 127) / 128, 128>>>(a);
        break;
    case 2:
        decode_v2<<<a.B * a.H, V2_THREADS, (LAT + V2_TILE + 2) * sizeof(float)>>>(a);
        break;
    case 3:
        decode_v3<<<dim3(groups, a.B), G_THREADS, group_smem(hg, LAT, 1)>>>(a, hg);
        break;
    case 4:
    case 5:
        if (v == 4)
            decode_v4<<<dim3(a.nsplit, groups, a.B), G_THREADS, group_smem(hg, LAT, 1)>>>(a, hg);
        else
            decode_v5<<<dim3(a.nsplit, groups, a.B), G_THREADS, group_smem(hg, LAT, 2)>>>(a, hg);
        combine<<<a.B * a.H, 128, (a.nsplit + 1) * sizeof(float)>>>(a);
        break;
    }
    CUDA_CHECK(cudaGetLastError());
}
#endif

/** One shape the harness runs. */
struct Shape {
    const char *name;   ///< as printed and written to the CSV
    const char *config; ///< the model's config.json
    int B;              ///< sequences
    int T;              ///< cache rows per sequence (the longest length)
    int zero_seq;       ///< index of a sequence with no positions, or -1
};

/** One version on one shape. */
struct Result {
    double ms;      ///< mean time per step
    double gbps;    ///< bytes the step must read, per second
    double gflops;  ///< flops the step must do, per second
    double err;     ///< output error relative to the reference's largest value
    double lse_err; ///< log-sum-exp error
    bool ok;        ///< both within TOLERANCE
};

// Largest |got − want| over the tensor, relative to its largest |want|; NaN anywhere makes it NaN.
static double rel_err(const std::vector<float> &got, const std::vector<float> &want) {
    double diff = 0.0, scale = 1e-30;
    for (size_t i = 0; i < got.size(); i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (std::isnan(got[i]) || std::isnan(d)) return NAN;
        if (d > diff) diff = d;
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    }
    return diff / scale;
}

// lse: equal infinities count as equal (an empty sequence); otherwise |got − want| / max(1, |want|).
static double lse_err(const std::vector<float> &got, const std::vector<float> &want) {
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); i++) {
        if (std::isinf(want[i])) {
            if (got[i] != want[i]) return NAN;
            continue;
        }
        double d = fabs((double)got[i] - (double)want[i]) / fmax(1.0, fabs(want[i]));
        if (std::isnan(d)) return NAN;
        if (d > worst) worst = d;
    }
    return worst;
}

static const double TOLERANCE = 1e-4; // float32 sums over up to 16k positions in another order

#ifndef TS_CUDA_EMU
static int usage(void) {
    fprintf(stderr, "usage: mla_decode [VERSION 0-%d] [--csv FILE] [--reps N] [--config PATH --B N --T N]\n",
            NVERSIONS);
    return 2;
}

int main(int argc, char **argv) {
    int only = 0, reps = 20, cB = 0, cT = 0;
    const char *csv_path = NULL, *config = NULL;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
            csv_path = argv[++i];
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else if ((!strcmp(argv[i], "--reps") || !strcmp(argv[i], "--B") || !strcmp(argv[i], "--T")) && i + 1 < argc) {
            long v = strtol(argv[i + 1], &end, 10);
            if (*end || v < 1 || v > (1 << 20)) {
                fprintf(stderr, "mla_decode: %s: expected a positive integer, got '%s'\n", argv[i], argv[i + 1]);
                return 2;
            }
            (!strcmp(argv[i], "--reps") ? reps : !strcmp(argv[i], "--B") ? cB : cT) = (int)v;
            i++;
        } else if (argv[i][0] != '-') {
            long v = strtol(argv[i], &end, 10);
            if (*end || v < 0 || v > NVERSIONS) {
                fprintf(stderr, "mla_decode: version must be 0 (all) to %d, got '%s'\n", NVERSIONS, argv[i]);
                return 2;
            }
            only = (int)v;
        } else {
            return usage();
        }
    }
    if (config && (!cB || !cT)) {
        fprintf(stderr, "mla_decode: --config needs --B and --T\n");
        return 2;
    }
    // No GPU is not an error: the build machines have nvcc and no driver.
    int ndev = 0;
    cudaError_t derr = cudaGetDeviceCount(&ndev);
    if (derr != cudaSuccess || ndev == 0) {
        printf("mla_decode: no GPU (%s): nothing run\n",
               derr != cudaSuccess ? cudaGetErrorString(derr) : "cudaGetDeviceCount found 0 devices");
        return 0;
    }
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    int mem_khz = 0, bus_bits = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, 0));
    CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0));
    double peak_gbps = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) / 1e9; // double data rate
    if (peak_gbps <= 0.0) peak_gbps = NAN; // not reported: the fractions print as nan rather than inf
    printf("%s: %d SMs, L2 %d MB, peak memory bandwidth %.0f GB/s (memory clock %d MHz x %d-bit bus x 2)\n", prop.name,
           prop.multiProcessorCount, prop.l2CacheSize >> 20, peak_gbps, mem_khz / 1000, bus_bits);

    size_t optin = prop.sharedMemPerBlockOptin;
    CUDA_CHECK(cudaFuncSetAttribute(decode_v3, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)optin));
    CUDA_CHECK(cudaFuncSetAttribute(decode_v4, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)optin));
    CUDA_CHECK(cudaFuncSetAttribute(decode_v5, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)optin));
    // Writing a buffer twice the L2 evicts the previous run's cache rows: every timed run reads from memory.
    size_t flush_bytes = 2 * (size_t)prop.l2CacheSize;
    void *flush = NULL;
    CUDA_CHECK(cudaMalloc(&flush, flush_bytes));

    FILE *csv = NULL;
    std::vector<char> csv_tmp; // written beside csv_path and renamed at the end: never a half-written file
    if (csv_path) {
        csv_tmp.resize(strlen(csv_path) + 5);
        snprintf(csv_tmp.data(), csv_tmp.size(), "%s.tmp", csv_path);
        csv = fopen(csv_tmp.data(), "w");
        if (!csv) {
            fprintf(stderr, "mla_decode: %s: %s\n", csv_tmp.data(), strerror(errno));
            return 2;
        }
        fprintf(csv, "gpu,version,shape,config,B,T,tokens,H,dc,dr,nsplit,ms,gb_per_s,gflop_per_s,peak_gb_per_s,"
                     "frac_of_peak,flop_per_byte,max_rel_err,lse_err,ok\n");
    }

    std::vector<Shape> shapes;
    if (config) {
        shapes.push_back({"custom", config, cB, cT, -1});
    } else {
        shapes.push_back({"ch04", "configs/ch04-mla.json", 4, 1024, 2});
        shapes.push_back({"v3-B1-T1k", "configs/published/deepseek-v3.json", 1, 1024, -1});
        shapes.push_back({"v3-B8-T4k", "configs/published/deepseek-v3.json", 8, 4096, 3});
        shapes.push_back({"v3-B1-T16k", "configs/published/deepseek-v3.json", 1, 16384, -1});
        shapes.push_back({"v3-B4-T16k", "configs/published/deepseek-v3.json", 4, 16384, -1});
    }
    cudaEvent_t ev0, ev1;
    CUDA_CHECK(cudaEventCreate(&ev0));
    CUDA_CHECK(cudaEventCreate(&ev1));
    int failures = 0;
    for (const Shape &sh : shapes) {
        appA_shape d;
        if (appA_shape_load(&d, sh.config)) return 2;
        int B = sh.B, T = sh.T, H = d.H, dc = d.dc, dr = d.dr, LAT = dc + dr;
        // lengths: the first sequence full, the others shorter (not multiples of any tile), one empty
        std::vector<int> len(B);
        long long tokens = 0;
        int max_len = 0;
        for (int b = 0; b < B; b++) {
            len[b] = b == 0 ? T : T - (int)((long long)b * T / (B + 1)) - 7 * b;
            if (len[b] < 1) len[b] = 1;
            if (b == sh.zero_seq) len[b] = 0;
            tokens += len[b];
            max_len = len[b] > max_len ? len[b] : max_len;
        }
        std::vector<float> cache((size_t)B * T * LAT), q((size_t)B * H * LAT), ref((size_t)B * H * dc),
            ref_lse((size_t)B * H), out((size_t)B * H * dc), lse((size_t)B * H);
        uint64_t state = 0x9e3779b97f4a7c15ull;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int k = 0; k < LAT; k++) {
                    state = state * 6364136223846793005ull + 1442695040888963407ull;
                    float u = (float)((state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
                    cache[((size_t)b * T + t) * LAT + k] = t < len[b] ? u : NAN; // past the length: poison
                }
        printf("\n%s (%s): B %d, T %d, H %d, latent %d + %d, scale %.6f, lengths", sh.name, sh.config, B, T, H, dc, dr,
               d.scale);
        for (int b = 0; b < B; b++) printf(" %d", len[b]);
        printf("\n");
        if (appA_reference(sh.config, B, T, len.data(), cache.data(), 1234, q.data(), ref.data(), ref_lse.data()))
            return 1;

        DecodeArgs a;
        memset(&a, 0, sizeof a);
        float *dq, *dcache, *dout, *dlse, *dpo, *dpl;
        int *dlen;
        int hg = group_heads(H, dc), groups = (H + hg - 1) / hg;
        int nsplit = choose_splits(B, groups, max_len, prop.multiProcessorCount);
        CUDA_CHECK(cudaMalloc(&dq, q.size() * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&dcache, cache.size() * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&dout, out.size() * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&dlse, lse.size() * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&dpo, (size_t)B * H * nsplit * dc * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&dpl, (size_t)B * H * nsplit * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&dlen, B * sizeof(int)));
        CUDA_CHECK(cudaMemcpy(dq, q.data(), q.size() * sizeof(float), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(dcache, cache.data(), cache.size() * sizeof(float), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(dlen, len.data(), B * sizeof(int), cudaMemcpyHostToDevice));
        a.q = dq, a.cache = dcache, a.len = dlen, a.out = dout, a.lse = dlse, a.part_out = dpo, a.part_lse = dpl;
        a.B = B, a.H = H, a.dc = dc, a.dr = dr, a.max_T = T, a.nsplit = nsplit, a.scale = d.scale;
        // what a version must move at least: every cached row of every sequence once, and the queries
        double bytes = ((double)tokens * LAT + (double)B * H * LAT) * sizeof(float);
        double flops = 2.0 * H * (double)tokens * (LAT + dc); // scores (LAT) and the weighted sum (dc)
        printf("  groups of %d heads, %d splits; must read %.1f MB, %.2f GFLOP (%.1f flop/byte)\n", hg, nsplit,
               bytes / 1e6, flops / 1e9, flops / bytes);
        for (int v = 1; v <= NVERSIONS; v++) {
            if (only && v != only) continue;
            const char *why = unsupported(v, H, dc, dr, optin);
            if (why) {
                printf("  v%d: skipped (%s)\n", v, why);
                continue;
            }
            CUDA_CHECK(cudaMemset(dout, 0xff, out.size() * sizeof(float))); // NaN: an output never written shows
            CUDA_CHECK(cudaMemset(dlse, 0xff, lse.size() * sizeof(float)));
            launch(v, a);
            CUDA_CHECK(cudaDeviceSynchronize());
            CUDA_CHECK(cudaMemcpy(out.data(), dout, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
            CUDA_CHECK(cudaMemcpy(lse.data(), dlse, lse.size() * sizeof(float), cudaMemcpyDeviceToHost));
            Result r;
            r.err = rel_err(out, ref);
            r.lse_err = lse_err(lse, ref_lse);
            r.ok = r.err <= TOLERANCE && r.lse_err <= TOLERANCE;
            // time: the mean of reps runs, each after an L2 flush, between two events
            double total = 0.0;
            int n_reps = v == 1 && tokens * H > (1 << 22) ? 3 : reps; // version 1 is slow on V3's shapes
            for (int i = 0; i < n_reps; i++) {
                CUDA_CHECK(cudaMemsetAsync(flush, i & 0xff, flush_bytes));
                CUDA_CHECK(cudaEventRecord(ev0));
                launch(v, a);
                CUDA_CHECK(cudaEventRecord(ev1));
                CUDA_CHECK(cudaEventSynchronize(ev1));
                float ms = 0.0f;
                CUDA_CHECK(cudaEventElapsedTime(&ms, ev0, ev1));
                total += ms;
            }
            r.ms = total / n_reps;
            r.gbps = bytes / (r.ms * 1e-3) / 1e9;
            r.gflops = flops / (r.ms * 1e-3) / 1e9;
            failures += !r.ok;
            printf("  v%d: %9.4f ms  %8.1f GB/s (%5.1f%% of peak)  %9.1f GFLOP/s  err %.1e  lse err %.1e  %s\n", v,
                   r.ms, r.gbps, 100.0 * r.gbps / peak_gbps, r.gflops, r.err, r.lse_err, r.ok ? "ok" : "WRONG");
            if (csv)
                fprintf(csv, "\"%s\",%d,%s,%s,%d,%d,%lld,%d,%d,%d,%d,%.6f,%.3f,%.3f,%.3f,%.5f,%.4f,%.3e,%.3e,%d\n",
                        prop.name, v, sh.name, sh.config, B, T, tokens, H, dc, dr, v >= 4 ? nsplit : 1, r.ms, r.gbps,
                        r.gflops, peak_gbps, r.gbps / peak_gbps, flops / bytes, r.err, r.lse_err, r.ok ? 1 : 0);
        }
        CUDA_CHECK(cudaFree(dq));
        CUDA_CHECK(cudaFree(dcache));
        CUDA_CHECK(cudaFree(dout));
        CUDA_CHECK(cudaFree(dlse));
        CUDA_CHECK(cudaFree(dpo));
        CUDA_CHECK(cudaFree(dpl));
        CUDA_CHECK(cudaFree(dlen));
    }
    CUDA_CHECK(cudaFree(flush));
    if (csv && (fclose(csv) || rename(csv_tmp.data(), csv_path))) {
        fprintf(stderr, "mla_decode: %s: %s\n", csv_path, strerror(errno));
        return 2;
    }
    if (failures) fprintf(stderr, "mla_decode: %d version/shape pair(s) disagree with the C absorbed decode\n", failures);
    return failures ? 1 : 0;
}
#endif

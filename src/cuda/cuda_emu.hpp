/*
 * The part of CUDA that appendix A's kernels use, on the CPU: enough to compile
 * src/cuda/mla_decode.cu's kernels with g++ and run them, a block at a time,
 * each block's threads as fibers (ucontext) on one OS thread that take turns
 * at every barrier. Not a GPU model: it checks what the kernels compute and
 * where they read and write, not how fast, and not the races that only a
 * GPU's timing shows.
 *
 *   __syncthreads()          a barrier over the block's threads
 *   __shfl_xor_sync()        an exchange through a per-warp slot array, between two warp barriers
 *   extern __shared__ T x[]  one buffer per element type, reused by every block (blocks run one after another)
 *   threadIdx, blockIdx      set by the scheduler before it switches to a thread
 *   __pipeline_memcpy_async  a synchronous copy (commit and wait do nothing)
 */
#ifndef TS_CUDA_EMU_HPP
#define TS_CUDA_EMU_HPP

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include <ucontext.h>

#define TS_CUDA_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
    float x, y, z, w;
};
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
using std::max;
using std::min;

// The running thread's indices: one OS thread runs every CUDA thread as a
// fiber, and the scheduler sets these before switching to one.
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

// Dynamic shared memory: the kernels declare `extern __shared__ float smem[]` and
// `extern __shared__ float4 smem4[]`; both name these (blocks run one at a time).
constexpr size_t EMU_SHARED_BYTES = 232448; // Hopper's 227 kB per block
alignas(16) inline float smem[EMU_SHARED_BYTES / sizeof(float)];
alignas(16) inline float4 smem4[EMU_SHARED_BYTES / sizeof(float4)];

// One block's threads as fibers, switched by hand at every barrier.
struct EmuBlock {
    struct Fiber {
        ucontext_t ctx;
        std::vector<char> stack;
        bool done = false;
    };
    std::vector<Fiber> fibers;
    ucontext_t scheduler;
    unsigned current = 0;
    std::function<void()> kernel;
    unsigned block_arrived = 0, block_generation = 0;
    std::vector<unsigned> warp_arrived, warp_generation;
    std::vector<float> slots; // one per thread, for the shuffles
};
inline EmuBlock *emu_block = nullptr;

static inline void emu_yield() {
    EmuBlock &eb = *emu_block;
    swapcontext(&eb.fibers[eb.current].ctx, &eb.scheduler);
}

// Wait until all n participants have arrived (arrived/generation: a reusable barrier).
static inline void emu_barrier(unsigned &arrived, unsigned &generation, unsigned n) {
    unsigned gen = generation;
    if (++arrived == n) {
        arrived = 0;
        generation++;
        return;
    }
    while (generation == gen) emu_yield();
}

static inline void __syncthreads() { emu_barrier(emu_block->block_arrived, emu_block->block_generation, blockDim.x); }

static inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
    (void)mask;
    EmuBlock &eb = *emu_block;
    unsigned tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    eb.slots[tid] = v;
    emu_barrier(eb.warp_arrived[warp], eb.warp_generation[warp], 32);
    float other = eb.slots[warp * 32 + (lane ^ (unsigned)lane_mask)];
    emu_barrier(eb.warp_arrived[warp], eb.warp_generation[warp], 32); // no slot is overwritten before all have read
    return other;
}

static inline void __pipeline_memcpy_async(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static inline void __pipeline_commit() {}
static inline void __pipeline_wait_prior(size_t) {}

static void emu_trampoline() {
    EmuBlock &eb = *emu_block;
    eb.kernel();
    eb.fibers[eb.current].done = true; // uc_link returns to the scheduler
}

// Run block blockIdx's threads, round robin until every one has returned
// (a function of its own: locals live across swapcontext are safe only here).
[[gnu::noinline]] static void emu_run_block(EmuBlock &eb, unsigned nthreads) {
    for (unsigned t = 0; t < nthreads; t++) {
        auto &f = eb.fibers[t];
        f.done = false;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = &eb.scheduler;
        makecontext(&f.ctx, emu_trampoline, 0);
    }
    for (bool running = true; running;) {
        running = false;
        for (unsigned t = 0; t < nthreads; t++) {
            if (eb.fibers[t].done) continue;
            running = true;
            eb.current = t;
            threadIdx = dim3(t);
            swapcontext(&eb.scheduler, &eb.fibers[t].ctx);
        }
    }
}

// Run kernel() over grid × block threads, one block at a time, its threads as
// fibers taking turns at every barrier. Shared memory starts as 0xFF bytes
// (NaN as floats): a read of something never written shows in the output.
template <typename F>
static void emu_launch(dim3 grid, dim3 block, size_t shared_bytes, F kernel) {
    if (shared_bytes > EMU_SHARED_BYTES || block.y != 1 || block.z != 1 || block.x % 32) {
        fprintf(stderr, "cuda_emu: unsupported launch (%zu bytes shared, block %u)\n", shared_bytes, block.x);
        exit(1);
    }
    gridDim = grid;
    blockDim = block;
    EmuBlock eb;
    eb.fibers.resize(block.x);
    for (auto &f : eb.fibers) f.stack.resize(1 << 16);
    eb.kernel = kernel;
    emu_block = &eb;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                memset(smem, 0xff, shared_bytes);
                memset(smem4, 0xff, shared_bytes);
                blockIdx = dim3(bx, by, bz);
                eb.block_arrived = eb.block_generation = 0;
                eb.warp_arrived.assign(block.x / 32, 0);
                eb.warp_generation.assign(block.x / 32, 0);
                eb.slots.assign(block.x, 0.0f);
                emu_run_block(eb, block.x);
            }
    emu_block = nullptr;
}

#endif

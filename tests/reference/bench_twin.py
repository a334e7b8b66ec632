"""The twin's half of `make bench`: the work `tinyseek bench --out DIR` timed, in PyTorch.

    python3 tests/reference/twin.py bench DIR --threads N [--steps 10] [--warmup 2] [--reps 5] [--gen 256]

Loads DIR/config.json, DIR/model.safetensors and DIR/bench_inputs.safetensors
(the training batch and the prompt) and measures, as tinyseek bench does:
training tokens/s of whole steps (zero_grad, forward, backward, clip_grad_norm_,
torch.optim.AdamW; median of --steps after --warmup), prefill and greedy
generation tokens/s with the twin's KV cache (batch 1, inference mode,
median of --reps), and the process's peak RSS (VmHWM). Prints a
`RESULT key=value ...` line.

PyTorch at its best (DESIGN.md section 6) needs its environment set before it
starts, which scripts/bench.sh does: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS
equal to --threads (this build's BLAS is the pthread OpenBLAS, whose own
thread pool otherwise fights PyTorch's OpenMP one), and MALLOC_MMAP_THRESHOLD_
/ MALLOC_TRIM_THRESHOLD_ raised so that large tensors are not mapped and
unmapped (page faults) every step. This script warns when they are not set.
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import twin  # noqa: E402


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def blas_core():
    """openblas_get_corename() of the OpenBLAS this process loaded (PyTorch's libblas wraps it)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown"


def main(argv):
    ap = argparse.ArgumentParser(prog="twin.py bench")
    ap.add_argument("dir", help="folder written by tinyseek bench --out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--gen", type=int, default=256)
    ap.add_argument("--label", default=None)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-gen", action="store_true")
    a = ap.parse_args(argv)
    for var, want in (("OMP_NUM_THREADS", str(a.threads)), ("OPENBLAS_NUM_THREADS", str(a.threads))):
        if os.environ.get(var) != want:
            print(f"twin bench: warning: {var} is {os.environ.get(var)!r}, not {want} (see scripts/bench.sh)",
                  file=sys.stderr)
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        print("twin bench: warning: MALLOC_MMAP_THRESHOLD_ is not set (see scripts/bench.sh)", file=sys.stderr)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    model = twin.load_model(a.dir, torch.float32)
    cfg = model.cfg
    inputs, _ = st.load(os.path.join(a.dir, "bench_inputs.safetensors"))
    tokens = torch.from_numpy(inputs["tokens"].astype(np.int64))
    targets = torch.from_numpy(inputs["targets"].astype(np.int64))
    prompt = torch.from_numpy(inputs["prompt"].astype(np.int64))
    B, T = tokens.shape
    print(f"twin bench: {a.dir}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"BLAS openblas ({blas_core()})")

    train_tps = step_cpu_ms = 0.0
    if not a.no_train:
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True)
        times, cpu = [], []
        for s in range(a.warmup + a.steps):
            t0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            _, loss = model(tokens, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if s >= a.warmup:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        t = statistics.median(times)
        step_cpu_ms = 1e3 * statistics.median(cpu)
        train_tps = B * T / t
        print(f"twin bench: training   {train_tps:8.0f} tokens/s  (batch {B}x{T}, median of {a.steps} steps "
              f"{1e3 * t:.1f} ms, {step_cpu_ms:.1f} ms CPU)")

    prefill_tps = gen_tps = 0.0
    if not a.no_gen:
        P = prompt.numel()
        model.eval()
        with torch.inference_mode():
            cache = twin.KVCache(cfg.num_hidden_layers, P + a.gen)
            model(prompt[None], cache=cache, start=0)  # allocates the cache
            times = []
            for _ in range(a.reps):
                t0 = time.perf_counter()
                logits = model(prompt[None], cache=cache, start=0)[0, -1]
                times.append(time.perf_counter() - t0)
            prefill_tps = P / statistics.median(times)
            times = []
            for _ in range(a.reps):
                logits = model(prompt[None], cache=cache, start=0)[0, -1]
                t0 = time.perf_counter()
                for i in range(a.gen):
                    nxt = logits.argmax().view(1, 1)
                    logits = model(nxt, cache=cache, start=P + i)[0, -1]
                times.append(time.perf_counter() - t0)
            gen_tps = a.gen / statistics.median(times)
        print(f"twin bench: prefill    {prefill_tps:8.0f} tokens/s  (prompt {P}, median of {a.reps})")
        print(f"twin bench: generation {gen_tps:8.0f} tokens/s  (batch 1, {a.gen} new tokens, KV cache, "
              f"median of {a.reps})")
    rss = peak_rss_mb()
    print(f"twin bench: peak RSS {rss:.1f} MB")
    print(f"RESULT impl=pytorch config={a.label or a.dir} threads={torch.get_num_threads()} batch={B} seq={T} "
          f"train_tok_s={train_tps:.1f} step_cpu_ms={step_cpu_ms:.3f} prefill_tok_s={prefill_tps:.1f} gen_tok_s={gen_tps:.1f} "
          f"peak_rss_mb={rss:.1f} matmul=openblas blas_core={blas_core()}")
    return 0

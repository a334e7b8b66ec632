"""The twin's half of `make bench`: the work `tinyseek bench --out DIR` timed, in PyTorch.

    python3 tests/reference/twin.py bench DIR --threads N [--steps 10] [--warmup 2] [--reps 5] [--gen 256]
                                               [--rollout [--rollout-reps 3] [--grpo-steps 3]]

Loads DIR/config.json, DIR/model.safetensors and DIR/bench_inputs.safetensors
(the training batch and the prompt) and measures, as tinyseek bench does:
training tokens/s of whole steps (zero_grad, forward, backward, clip_grad_norm_,
torch.optim.AdamW; median of --steps after --warmup), prefill and greedy
generation tokens/s with the twin's KV cache (batch 1, inference mode,
median of --reps), and the process's peak RSS (VmHWM). Prints a
`RESULT key=value ...` line.

With --rollout, the post-training work of `tinyseek bench --rollout N` on the
rollout batch it wrote (DIR/bench_rollout.safetensors: the prompt, the N
sequences, their completion targets and rewards, the group size and beta):
  - rollouts: N sequences generated at once with the twin's KV cache (the
    prompt prefilled once and its cache copied to the N rows, as tinyseek
    does), multinomial sampling at temperature 1 for as many new tokens as
    the file's sequences hold, nothing stopping early, torch.inference_mode;
  - a GRPO step on the file's sequences: the reference model's log-probs
    under no_grad (beta > 0), zero_grad, the policy's forward, twin.grpo_loss
    (the loss `make crosscheck` checks tinyseek's against; pi_old = the policy,
    rho = 1, as at mu = 1), backward, clip_grad_norm_ 1.0, torch.optim.AdamW
    (lr 1e-4, no weight decay, as tinyseek grpo).
It reports the first step's gradient norm (both programs start from the same
weights and sequences, so the two norms must agree) and the largest weight
change (the steps must move the weights).

Every timed part also reports the process's CPU time over the wall time
(about the thread count when nothing else runs; less on a loaded machine).

PyTorch at its best (DESIGN.md section 6) needs its environment set before it
starts, which scripts/bench.py does: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS
equal to --threads (this build's BLAS is the pthread OpenBLAS, whose own
thread pool otherwise fights PyTorch's OpenMP one), and MALLOC_MMAP_THRESHOLD_
/ MALLOC_TRIM_THRESHOLD_ raised so that large tensors are not mapped and
unmapped (page faults) every step. This script warns when they are not set.
"""
import argparse
import ctypes
import math
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


def aten_capability():
    """The vector width of PyTorch's own (ATen) kernels, as torch.__config__.show() says (AVX2 / AVX512)."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def bench_rollout(a, folder):
    """Rollout tokens/s and seconds per GRPO step on DIR/bench_rollout.safetensors (see the module comment)."""
    t, meta = st.load(os.path.join(folder, "bench_rollout.safetensors"))
    prompt = torch.from_numpy(t["prompt"].astype(np.int64))
    tokens = torch.from_numpy(t["tokens"].astype(np.int64))
    targets = torch.from_numpy(t["targets"].astype(np.int64))
    rewards = torch.from_numpy(t["rewards"].astype(np.float32))
    G, beta = int(meta["group"]), float(meta["beta"])
    N, T = tokens.shape
    P = prompt.numel()
    K = T - P  # new tokens per sequence
    checksum = int((tokens.reshape(-1) * (torch.arange(N * T) % 1000 + 1)).sum())

    model = twin.load_model(folder, torch.float32)
    cfg = model.cfg
    L = cfg.num_hidden_layers
    model.eval()
    with torch.inference_mode():
        small = twin.KVCache(L, P + K)  # the prompt's prefill, batch 1
        big = twin.KVCache(L, P + K)  # the N sequences
        times, cpu = [], []
        for rep in range(-1, a.rollout_reps):  # rep -1: untimed (allocates the caches)
            torch.manual_seed(rep + 1)
            t0, c0 = time.perf_counter(), time.process_time()
            logits = model(prompt[None], cache=small, start=0)[:, -1]
            for layer in range(L):  # the prompt's cache, copied to the N rows
                if big.layers[layer] is None:
                    big.layers[layer] = [torch.zeros((N,) + x.shape[1:], dtype=x.dtype) for x in small.layers[layer]]
                for dst, src in zip(big.layers[layer], small.layers[layer]):
                    dst[:, :P] = src[:, :P]
            logits = logits.expand(N, -1)
            out = torch.full((N, K), -1, dtype=torch.int64)
            gen_tokens = 0
            for i in range(K):
                nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1)  # temperature 1
                out[:, i] = nxt[:, 0]
                gen_tokens += nxt.numel()
                if i + 1 < K:  # the last token is sampled, not fed back (as tinyseek)
                    logits = model(nxt, cache=big, start=P + i)[:, -1]
            if rep >= 0:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        if int(out.min()) < 0 or int(out.max()) >= cfg.vocab_size:
            raise SystemExit(f"twin bench: sampled ids outside 0..{cfg.vocab_size - 1}")
    rollout_tok_s = gen_tokens / statistics.median(times)
    rollout_util = sum(cpu) / sum(times)
    print(f"twin bench: rollouts   {rollout_tok_s:8.0f} tokens/s  ({N} sequences at once, prompt {P}, {gen_tokens} new "
          f"tokens in all, temperature 1, median of {a.rollout_reps}; CPU/wall {rollout_util:.2f})")

    model.train()
    ref = twin.load_model(folder, torch.float32) if beta > 0 else None
    if ref is not None:
        ref.eval()
        ref.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0, foreach=True)
    w0 = [p.detach().clone() for p in params]
    ignore = targets == twin.IGNORE
    times, cpu, first_norm = [], [], None
    for s in range(-1, a.grpo_steps):  # s -1: untimed, from the saved weights (its norm is reported)
        t0, c0 = time.perf_counter(), time.process_time()
        ref_logp = None
        if ref is not None:
            with torch.no_grad():
                lp = torch.log_softmax(ref(tokens), dim=-1)
                ref_logp = lp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1).masked_fill(ignore, 0.0)
        opt.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss, _, _ = twin.grpo_loss(logits, targets, rewards, None, ref_logp if ref is not None else torch.zeros(N, T),
                                    G, 0.2, 0.2, beta, 1e-4, True, 0, K, False)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
        opt.step()
        if s < 0:
            first_norm = norm
        else:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        if not math.isfinite(float(loss)):
            raise SystemExit("twin bench: the GRPO loss is not a number")
    max_dw = max(float((p.detach() - q).abs().max()) for p, q in zip(params, w0))
    grpo_step_s = statistics.median(times)
    grpo_util = sum(cpu) / sum(times)
    print(f"twin bench: GRPO step  {grpo_step_s:8.3f} s  ({N // G} groups of {G}, {T} tokens each, beta {beta:g}, "
          f"median of {a.grpo_steps}; CPU/wall {grpo_util:.2f}; first gradient norm {first_norm:.6g}, largest weight "
          f"change {max_dw:.3g})")
    return dict(rollout_n=N, rollout_new=K, rollout_tok_s=f"{rollout_tok_s:.1f}", rollout_tokens=gen_tokens,
                rollout_util=f"{rollout_util:.3f}", grpo_step_s=f"{grpo_step_s:.5f}", grpo_util=f"{grpo_util:.3f}",
                grpo_grad_norm=f"{first_norm:.8g}", grpo_max_dw=f"{max_dw:.4g}", rollout_sum=checksum)


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
    ap.add_argument("--rollout", action="store_true", help="time rollouts and GRPO steps on DIR/bench_rollout.safetensors")
    ap.add_argument("--rollout-reps", type=int, default=3)
    ap.add_argument("--grpo-steps", type=int, default=3)
    a = ap.parse_args(argv)
    for var, want in (("OMP_NUM_THREADS", str(a.threads)), ("OPENBLAS_NUM_THREADS", str(a.threads))):
        if os.environ.get(var) != want:
            print(f"twin bench: warning: {var} is {os.environ.get(var)!r}, not {want} (see scripts/bench.py)",
                  file=sys.stderr)
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        print("twin bench: warning: MALLOC_MMAP_THRESHOLD_ is not set (see scripts/bench.py)", file=sys.stderr)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    print(f"twin bench: {a.dir}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"BLAS openblas ({blas_core()}), ATen {aten_capability()}")
    B, T = 0, 0
    rl = {}
    if a.rollout:  # first, from the saved weights, as tinyseek bench --rollout
        rl = bench_rollout(a, a.dir)
    if not (a.no_train and a.no_gen):
        model = twin.load_model(a.dir, torch.float32)
        cfg = model.cfg
        inputs, _ = st.load(os.path.join(a.dir, "bench_inputs.safetensors"))
        tokens = torch.from_numpy(inputs["tokens"].astype(np.int64))
        targets = torch.from_numpy(inputs["targets"].astype(np.int64))
        prompt = torch.from_numpy(inputs["prompt"].astype(np.int64))
        B, T = tokens.shape

    train_tps = step_cpu_ms = train_util = gen_util = 0.0
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
        train_util = sum(cpu) / sum(times)
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
            times, cpu = [], []
            for _ in range(a.reps):
                logits = model(prompt[None], cache=cache, start=0)[0, -1]
                t0, c0 = time.perf_counter(), time.process_time()
                for i in range(a.gen):
                    nxt = logits.argmax().view(1, 1)
                    logits = model(nxt, cache=cache, start=P + i)[0, -1]
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            gen_tps = a.gen / statistics.median(times)
            gen_util = sum(cpu) / sum(times)
        print(f"twin bench: prefill    {prefill_tps:8.0f} tokens/s  (prompt {P}, median of {a.reps})")
        print(f"twin bench: generation {gen_tps:8.0f} tokens/s  (batch 1, {a.gen} new tokens, KV cache, "
              f"median of {a.reps})")
    rss = peak_rss_mb()
    print(f"twin bench: peak RSS {rss:.1f} MB")
    extra = "".join(f" {k}={v}" for k, v in rl.items())
    print(f"RESULT impl=pytorch config={a.label or a.dir} threads={torch.get_num_threads()} batch={B} seq={T} "
          f"train_tok_s={train_tps:.1f} step_cpu_ms={step_cpu_ms:.3f} prefill_tok_s={prefill_tps:.1f} gen_tok_s={gen_tps:.1f} "
          f"peak_rss_mb={rss:.1f} train_util={train_util:.3f} gen_util={gen_util:.3f}{extra} matmul=openblas "
          f"blas_core={blas_core()} aten={aten_capability()}")
    return 0

#!/usr/bin/python3
"""make bench: tinyseek and its PyTorch twin on the same model and batch, back to back.

    scripts/bench.py --ts build/release/tinyseek --out runs/bench [--runs 3] [--threads 1,2]
                     LABEL=CONFIG.json ...

For every config, every run and every thread count it runs `tinyseek bench`
(which first writes the model, batch and prompt to OUT/models/LABEL) and then
`twin.py bench` on that folder, alternating which goes first from run to run,
so that both see the same machine load. The twin gets PyTorch's best
environment (DESIGN.md section 6): OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
threads, and glibc's mmap/trim thresholds raised. Both processes inherit the
same OPENBLAS_CORETYPE (--coretype overrides it for both), and each prints the
OpenBLAS kernel it ran.

Writes OUT/bench_runs.csv (every measurement) and OUT/bench.csv (medians over
the runs, one row per config and thread count, with the ratios), and prints the
table and the issue's targets. No timing is ever asserted: this is a report.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TWIN = os.path.join(ROOT, "tests", "reference", "twin.py")
METRICS = ["train_tok_s", "prefill_tok_s", "gen_tok_s", "peak_rss_mb", "step_gflops", "sgemm_gflops",
           "sgemm1_gflops", "step_ms", "step_cpu_ms", "step_gflop"]


def parse_result(out, what):
    for line in out.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[1:])
    raise SystemExit(f"bench: {what} printed no RESULT line:\n{out}")


def run(cmd, env, what):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: {what} failed (exit {p.returncode}):\n{p.stdout}")
    return parse_result(p.stdout, what)


def med(rows, key):
    vals = [float(r[key]) for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ts", required=True, help="the tinyseek binary")
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--runs", type=int, default=3, help="measurements per config and thread count (medians)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--coretype", default=None, help="OPENBLAS_CORETYPE for both sides (default: inherited)")
    ap.add_argument("--wait-policy", default="passive",
                    help="OMP_WAIT_POLICY for both sides ('' = inherited). On a busy machine libgomp's default "
                         "spinning makes 2 threads slower than 1, for tinyseek and PyTorch alike")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("configs", nargs="+", help="LABEL=config.json")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    os.makedirs(os.path.join(a.out, "models"), exist_ok=True)
    base = dict(os.environ)
    if a.coretype is not None:
        base["OPENBLAS_CORETYPE"] = a.coretype
    if a.wait_policy:
        base["OMP_WAIT_POLICY"] = a.wait_policy
    load = os.getloadavg()[0]
    print(f"bench: {len(a.configs)} configs x threads {threads} x {a.runs} runs; load average {load:.2f} on "
          f"{os.cpu_count()} CPUs; OPENBLAS_CORETYPE={base.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"OMP_WAIT_POLICY={base.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    rows = []
    for spec in a.configs:
        label, cfg = spec.split("=", 1)
        folder = os.path.join(a.out, "models", label)
        for r in range(a.runs):
            for t in threads:
                ts_cmd = [a.ts, "bench", "--config", cfg, "--label", label, "--threads", str(t), "--out", folder,
                          "--steps", str(a.steps), "--reps", str(a.reps)]
                ts_env = dict(base, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t))
                pt_cmd = [a.python, TWIN, "bench", folder, "--threads", str(t), "--label", label,
                          "--steps", str(a.steps), "--reps", str(a.reps)]
                pt_env = dict(base, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
                              MALLOC_MMAP_THRESHOLD_="17179869184", MALLOC_TRIM_THRESHOLD_="17179869184")
                order = [("tinyseek", ts_cmd, ts_env), ("pytorch", pt_cmd, pt_env)]
                if r % 2 == 1 and os.path.exists(os.path.join(folder, "bench_inputs.safetensors")):
                    order.reverse()
                for impl, cmd, env in order:
                    res = run(cmd, env, f"{impl} on {label} at {t} threads")
                    res.update(run=r, impl=impl, config=label, threads=t)
                    rows.append(res)
                    print(f"  {label:<10} {t} thr  run {r + 1}  {impl:<8}  train {float(res['train_tok_s']):8.0f}"
                          f"  gen {float(res['gen_tok_s']):8.0f}  prefill {float(res['prefill_tok_s']):8.0f}"
                          f"  tok/s  RSS {float(res['peak_rss_mb']):6.1f} MB", flush=True)

    keys = ["config", "impl", "threads", "run", "matmul", "blas_core"] + METRICS
    with open(os.path.join(a.out, "bench_runs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in rows:
            w.writerow([r.get(k, "") for k in keys])

    summary = []
    for spec in a.configs:
        label = spec.split("=", 1)[0]
        for t in threads:
            ts = [r for r in rows if r["config"] == label and r["impl"] == "tinyseek" and r["threads"] == t]
            pt = [r for r in rows if r["config"] == label and r["impl"] == "pytorch" and r["threads"] == t]
            s = dict(config=label, threads=t, runs=len(ts), blas_ts=ts[0]["blas_core"], blas_pt=pt[0]["blas_core"],
                     matmul_ts=ts[0].get("matmul", "?"))
            for k in ("train_tok_s", "gen_tok_s", "prefill_tok_s", "peak_rss_mb"):
                s["ts_" + k], s["pt_" + k] = med(ts, k), med(pt, k)
            for k in ("step_gflops", "sgemm_gflops", "sgemm1_gflops", "step_gflop"):
                s[k] = med(ts, k)
            s["train_x"] = s["ts_train_tok_s"] / s["pt_train_tok_s"]
            # tokens per second of CPU time (all threads): what the wall clock would say on an idle machine
            s["ts_train_cpu_tok_s"] = float(ts[0]["batch"]) * float(ts[0]["seq"]) / (med(ts, "step_cpu_ms") * 1e-3)
            s["pt_train_cpu_tok_s"] = float(pt[0]["batch"]) * float(pt[0]["seq"]) / (med(pt, "step_cpu_ms") * 1e-3)
            s["train_cpu_x"] = s["ts_train_cpu_tok_s"] / s["pt_train_cpu_tok_s"]
            s["gen_x"] = s["ts_gen_tok_s"] / s["pt_gen_tok_s"]
            s["prefill_x"] = s["ts_prefill_tok_s"] / s["pt_prefill_tok_s"]
            s["rss_frac"] = s["ts_peak_rss_mb"] / s["pt_peak_rss_mb"]
            s["step_of_sgemm1"] = s["step_gflops"] / s["sgemm1_gflops"] if s["sgemm1_gflops"] else float("nan")
            summary.append(s)
    for s in summary:  # thread scaling of tinyseek's training
        one = [x for x in summary if x["config"] == s["config"] and x["threads"] == 1]
        s["ts_scaling"] = s["ts_train_tok_s"] / one[0]["ts_train_tok_s"] if one else float("nan")
        s["pt_scaling"] = s["pt_train_tok_s"] / one[0]["pt_train_tok_s"] if one else float("nan")
        # tokens per CPU-second relative to one thread: 1.0 means threading added no work, so the
        # wall clock would scale with the threads if the machine had those cores free
        s["ts_cpu_eff"] = s["ts_train_cpu_tok_s"] / one[0]["ts_train_cpu_tok_s"] if one else float("nan")
    cols = ["config", "threads", "runs", "ts_train_tok_s", "pt_train_tok_s", "train_x", "ts_gen_tok_s", "pt_gen_tok_s",
            "gen_x", "ts_prefill_tok_s", "pt_prefill_tok_s", "prefill_x", "ts_peak_rss_mb", "pt_peak_rss_mb",
            "rss_frac", "step_gflop", "step_gflops", "sgemm1_gflops", "sgemm_gflops", "step_of_sgemm1", "ts_scaling",
            "pt_scaling", "ts_train_cpu_tok_s", "pt_train_cpu_tok_s", "train_cpu_x", "ts_cpu_eff", "matmul_ts", "blas_ts",
            "blas_pt"]
    with open(os.path.join(a.out, "bench.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for s in summary:
            w.writerow([f"{s[c]:.4g}" if isinstance(s[c], float) else s[c] for c in cols])

    print(f"\nmedians of {a.runs} runs (tinyseek / PyTorch twin; tinyseek's matmul: {summary[0]['matmul_ts']}, "
          f"OpenBLAS kernels: tinyseek {summary[0]['blas_ts']}, PyTorch {summary[0]['blas_pt']}; "
          f"OMP_WAIT_POLICY={base.get('OMP_WAIT_POLICY', '(unset)')}):")
    hdr = (f"{'config':<10}{'thr':>4} | {'train tok/s':>17} {'x':>5} | {'generate tok/s':>17} {'x':>5} | "
           f"{'prefill tok/s':>17} {'x':>5} | {'peak RSS MB':>13} {'frac':>5} | {'step GF/s':>9} {'sgemm1':>7}"
           f" {'%':>4} {'2t/1t':>6} | {'train tok/CPU-s':>17} {'x':>5} {'eff':>5}")
    print(hdr)
    print("-" * len(hdr))
    for s in summary:
        print(f"{s['config']:<10}{s['threads']:>4} | {s['ts_train_tok_s']:8.0f} {s['pt_train_tok_s']:8.0f} "
              f"{s['train_x']:5.2f} | {s['ts_gen_tok_s']:8.0f} {s['pt_gen_tok_s']:8.0f} {s['gen_x']:5.1f} | "
              f"{s['ts_prefill_tok_s']:8.0f} {s['pt_prefill_tok_s']:8.0f} {s['prefill_x']:5.1f} | "
              f"{s['ts_peak_rss_mb']:6.0f} {s['pt_peak_rss_mb']:6.0f} {s['rss_frac']:5.2f} | "
              f"{s['step_gflops']:9.1f} {s['sgemm1_gflops']:7.1f} {100 * s['step_of_sgemm1']:4.0f}"
              f" {s['ts_scaling']:6.2f} | {s['ts_train_cpu_tok_s']:8.0f} {s['pt_train_cpu_tok_s']:8.0f}"
              f" {s['train_cpu_x']:5.2f} {s['ts_cpu_eff']:5.2f}")
    print("\ntargets (ratios, medians):")

    def target(name, ok):
        print(f"  [{'met' if ok else 'NOT met':^7}] {name}")

    for s in summary:
        tag = f"{s['config']}, {s['threads']} thr"
        target(f"{tag}: training >= 1.5x PyTorch ({s['train_x']:.2f}x)", s["train_x"] >= 1.5)
        target(f"{tag}: generation >= 5x PyTorch ({s['gen_x']:.1f}x)", s["gen_x"] >= 5)
        target(f"{tag}: peak RSS <= 1/3 of PyTorch's ({s['rss_frac']:.2f})", s["rss_frac"] <= 1 / 3)
        if s["threads"] == 1:
            target(f"{tag}: training step >= 60% of 1-thread sgemm ({100 * s['step_of_sgemm1']:.1f}%)",
                   s["step_of_sgemm1"] >= 0.6)
        if s["threads"] == 2:
            target(f"{tag}: 2 threads >= 1.7x 1 thread ({s['ts_scaling']:.2f}x; tokens per CPU-second "
                   f"{s['ts_cpu_eff']:.2f}x of 1 thread's)", s["ts_scaling"] >= 1.7)
    print(f"\nbench: wrote {a.out}/bench.csv and {a.out}/bench_runs.csv; load average now "
          f"{os.getloadavg()[0]:.2f} (noisy when other work shares the machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

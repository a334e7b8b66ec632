#!/usr/bin/python3
"""make bench: tinyseek and its PyTorch twin on the same model and batch, back to back.

    scripts/bench.py --ts build/release/tinyseek --out runs/bench [--runs 3] [--threads 1,2]
                     [--coretype auto] [--ts-matmul auto] [--rollout-config configs/ch07-base.json
                     --rollout-n 64,256 --rollout-new 64 | --no-rollout] LABEL=CONFIG.json ...

For every config, every run and every thread count it runs `tinyseek bench`
(which first writes the model, batch and prompt to OUT/models/LABEL) and then
`twin.py bench` on that folder, alternating which goes first from run to run,
so that both see the same machine load. Then the same for post-training
(DESIGN.md section 6): on --rollout-config, for each N of --rollout-n, N
sequences sampled at once through each program's KV cache (rollout tokens/s)
and GRPO steps on them (seconds per step); `tinyseek bench --rollout N`
writes the rollout batch and the twin trains on the same sequences.

Fair by default, each side at its best (DESIGN.md section 6):
  - OpenBLAS kernels: --coretype auto (the default) runs both programs on
    OpenBLAS's AVX-512 kernels when the CPU has AVX-512, whatever
    OPENBLAS_CORETYPE the environment exports (it may force Haswell's AVX2
    kernels, which halve PyTorch's sgemm); --coretype Haswell (or any name)
    forces that kernel set on both, --coretype env keeps the environment's.
  - tinyseek's matmul: --ts-matmul auto (the default) times a few steps with
    each of its paths (OpenBLAS, its own C loops; TS_MATMUL) per config and
    runs the faster; c, openblas or default (the library's own choice) force one.
  - PyTorch: OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = threads, glibc's
    mmap/trim thresholds raised; --pt-aten auto (the default) times a few
    steps with its own (ATen) kernels at their default width and at AVX-512
    (ATEN_CPU_CAPABILITY) where the CPU has it, and runs the faster; default
    or avx512 (or any ATEN_CPU_CAPABILITY value) force one.
    Both get the same OMP_WAIT_POLICY.
Both programs print the kernels they ran; the table's header names them.

Every measurement also records the process's CPU time over its wall time
(about the thread count on a quiet machine, less when other work took the
cores) and the load average before it, so a loaded machine shows in the numbers.

Before the table, sanity checks that stop the run (exit 1) when they fail:
both programs generated N x new tokens per rollout, the GRPO steps moved the
weights, and on the same rollout batch (matched by a checksum of its tokens)
both computed the same first gradient norm (relative difference < 1e-3).

Writes OUT/bench_runs.csv (every measurement) and OUT/bench.csv (medians over
the runs, one row per config and thread count, training rows first, then the
rollout rows, with the ratios), and prints the tables and the issue's targets.
No timing is ever asserted: this is a report.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TWIN = os.path.join(ROOT, "tests", "reference", "twin.py")
METRICS = ["train_tok_s", "prefill_tok_s", "gen_tok_s", "peak_rss_mb", "step_gflops", "sgemm_gflops",
           "sgemm1_gflops", "step_ms", "step_cpu_ms", "step_gflop", "train_util", "gen_util", "rollout_n",
           "rollout_new", "rollout_tok_s", "rollout_tokens", "rollout_util", "grpo_step_s", "grpo_util",
           "grpo_grad_norm", "grpo_max_dw", "rollout_sum", "load1"]
AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids", "zen4", "zen5"}
PT_ENV = dict(MALLOC_MMAP_THRESHOLD_="17179869184", MALLOC_TRIM_THRESHOLD_="17179869184")


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


def ratio(a, b):
    return a / b if b else float("nan")


# ---- which OpenBLAS kernels ---------------------------------------------------

def openblas_core(env):
    """openblas_get_corename() of the OpenBLAS PyTorch loads, under environment env (a fresh process)."""
    code = ("import ctypes; l = ctypes.CDLL('libopenblas.so.0'); l.openblas_get_corename.restype = ctypes.c_char_p; "
            "print(l.openblas_get_corename().decode())")
    p = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def pick_coretype(requested, environ):
    """(OPENBLAS_CORETYPE for both sides or None = inherited, why). auto: AVX-512 kernels where the CPU has them."""
    env_core = environ.get("OPENBLAS_CORETYPE")
    if requested == "env":
        return env_core, "the environment's"
    if requested != "auto":
        return requested, "asked for"
    flags = cpu_flags()
    if "avx512f" not in flags:
        return env_core, "no AVX-512 on this CPU: the environment's"
    bare = {k: v for k, v in environ.items() if k != "OPENBLAS_CORETYPE"}
    detected = openblas_core(bare)
    if detected and detected.lower() in AVX512_CORES:
        return detected, "OpenBLAS's own pick for this AVX-512 CPU"
    # an OpenBLAS older than the CPU detects a lesser core: name an AVX-512 one it has
    for name in (["Cooperlake"] if "avx512_bf16" in flags else []) + ["SkylakeX"]:
        got = openblas_core(dict(bare, OPENBLAS_CORETYPE=name))
        if got and got.lower() == name.lower():
            return name, f"AVX-512 CPU; OpenBLAS detects {detected}"
    return env_core, f"OpenBLAS has no AVX-512 kernels here ({detected}): the environment's"


# ---- the measurements --------------------------------------------------------

class Item:
    """One row group: a training config, or the rollout benchmark at one N."""

    def __init__(self, kind, label, cfg, folder, n=0):
        self.kind, self.label, self.cfg, self.folder, self.n = kind, label, cfg, folder, n
        self.matmul = "default"  # TS_MATMUL for tinyseek: c, openblas, or default (the library's choice)
        self.calibration = ""
        self.aten = "default"  # ATEN_CPU_CAPABILITY for PyTorch: default (its own choice) or a value
        self.pt_calibration = ""


def is_moe(cfg):
    """Whether a config routes to experts (issue 20 sets the MoE step a lower bar: many small products)."""
    with open(cfg) as f:
        return int(json.load(f).get("n_routed_experts") or 0) > 0


def ts_command(a, it, t, quick=False):
    cmd = [a.ts, "bench", "--config", it.cfg, "--label", it.label, "--threads", str(t)]
    if not quick:
        cmd += ["--out", it.folder]
    if it.kind == "train":
        steps, reps = (3, 1) if quick else (a.steps, a.reps)
        cmd += ["--steps", str(steps), "--reps", str(reps)]
        if quick:
            cmd += ["--warmup", "1", "--no-gen", "--sgemm", "0"]
    else:
        cmd += ["--no-train", "--no-gen", "--sgemm", "0", "--rollout", str(it.n), "--new", str(a.rollout_new),
                "--prompt", str(a.rollout_prompt), "--group", str(a.rollout_group),
                "--rollout-reps", str(1 if quick else a.rollout_reps), "--grpo-steps", str(1 if quick else a.grpo_steps)]
    return cmd


def pt_command(a, it, t, quick=False):
    cmd = [a.python, TWIN, "bench", it.folder, "--threads", str(t), "--label", it.label]
    if it.kind == "train":
        if quick:
            return cmd + ["--steps", "3", "--warmup", "1", "--no-gen"]
        return cmd + ["--steps", str(a.steps), "--reps", str(a.reps)]
    return cmd + ["--no-train", "--no-gen", "--rollout", "--rollout-reps", str(1 if quick else a.rollout_reps),
                  "--grpo-steps", str(1 if quick else a.grpo_steps)]


def seconds_of(it, res, a):
    """The quantity a calibration minimises: a training step, or a rollout plus a GRPO step."""
    if it.kind == "train":
        return float(res["batch"]) * float(res["seq"]) / float(res["train_tok_s"])
    return it.n * a.rollout_new / float(res["rollout_tok_s"]) + float(res["grpo_step_s"])


def calibrate(a, it, base, threads):
    """Each side's faster settings for this item, from a few steps with each (not in the table): tinyseek's
    matmul path (TS_MATMUL), then PyTorch's ATen kernel width (ATEN_CPU_CAPABILITY). The first tinyseek run
    writes the item's folder, which the twin's runs read."""
    t = max(threads)
    env = dict(base, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t))
    if a.ts_matmul != "auto":
        it.matmul, it.calibration = a.ts_matmul, "asked for"
        run(ts_command(a, it, t, quick=True) + ["--out", it.folder], env, "tinyseek (writing the inputs)")
    else:
        secs = {}
        for path in ("openblas", "c"):
            res = run(ts_command(a, it, t, quick=True) + ["--out", it.folder], dict(env, TS_MATMUL=path),
                      f"tinyseek calibration ({path})")
            if res.get("matmul") != path:  # a BLAS=0 build has the C loops only
                secs = {}
                it.matmul, it.calibration = "default", f"only {res.get('matmul')} in this build"
                break
            secs[path] = seconds_of(it, res, a)
        if secs:
            it.matmul = min(secs, key=secs.get)
            it.calibration = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in secs.items())
    if a.pt_aten != "auto":
        it.aten, it.pt_calibration = a.pt_aten, "asked for"
    elif "avx512f" not in cpu_flags():
        it.aten, it.pt_calibration = "default", "no AVX-512 on this CPU"
    else:
        secs = {}
        for cap in ("default", "avx512"):
            pt_env = dict(env, **PT_ENV)
            if cap != "default":
                pt_env["ATEN_CPU_CAPABILITY"] = cap
            res = run(pt_command(a, it, t, quick=True), pt_env, f"PyTorch calibration (ATen {cap})")
            secs[f"{cap} ({res.get('aten', '?')})"] = (seconds_of(it, res, a), cap)
        best = min(secs, key=lambda k: secs[k][0])
        it.aten = secs[best][1]
        it.pt_calibration = ", ".join(f"{k} {v[0] * 1e3:.0f} ms" for k, v in secs.items())


def check_rollout(a, it, pair):
    """Both sides did the same work: N x new tokens each, weights moved, equal first gradient norms on one batch."""
    want = it.n * a.rollout_new
    for r in pair:
        if int(r["rollout_tokens"]) != want:
            raise SystemExit(f"bench: CHECK FAILED: {r['impl']} generated {r['rollout_tokens']} tokens on {it.label}, "
                             f"expected {it.n} x {a.rollout_new} = {want}")
        if not float(r["grpo_max_dw"]) > 0:
            raise SystemExit(f"bench: CHECK FAILED: {r['impl']}'s GRPO steps on {it.label} left the weights unchanged")
    ts, pt = pair
    if ts["rollout_sum"] != pt["rollout_sum"]:
        return False  # the twin read another run's rollout batch (it went first): nothing to compare
    g1, g2 = float(ts["grpo_grad_norm"]), float(pt["grpo_grad_norm"])
    if not abs(g1 - g2) <= 1e-3 * max(abs(g1), abs(g2)):
        raise SystemExit(f"bench: CHECK FAILED: on the same rollout batch ({it.label}, {ts['threads']} threads) the "
                         f"first GRPO gradient norms differ: tinyseek {g1:.7g}, PyTorch {g2:.7g}")
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ts", required=True, help="the tinyseek binary")
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--runs", type=int, default=3, help="measurements per config and thread count (medians)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--coretype", default="auto",
                    help="OPENBLAS_CORETYPE for both sides: auto (AVX-512 kernels where the CPU has them), env "
                         "(inherited), or a name (Haswell: the AVX2 comparison)")
    ap.add_argument("--ts-matmul", default="auto", choices=["auto", "c", "openblas", "default"],
                    help="tinyseek's matmul path (TS_MATMUL): auto = the faster here, per config")
    ap.add_argument("--pt-aten", default="auto",
                    help="PyTorch's ATEN_CPU_CAPABILITY: auto = the faster here (its default or avx512), default, "
                         "or a value (avx2, avx512)")
    ap.add_argument("--wait-policy", default="passive",
                    help="OMP_WAIT_POLICY for both sides ('' = inherited). On a busy machine libgomp's default "
                         "spinning makes 2 threads slower than 1, for tinyseek and PyTorch alike")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--no-rollout", action="store_true", help="skip the post-training (rollout, GRPO step) rows")
    ap.add_argument("--rollout-config", default="configs/ch07-base.json")
    ap.add_argument("--rollout-label", default=None, help="row name (default: the config's file name)")
    ap.add_argument("--rollout-n", default="64,256", help="sequences sampled at once")
    ap.add_argument("--rollout-new", type=int, default=64, help="new tokens per sequence")
    ap.add_argument("--rollout-prompt", type=int, default=16)
    ap.add_argument("--rollout-group", type=int, default=8, help="GRPO group size G")
    ap.add_argument("--rollout-reps", type=int, default=3)
    ap.add_argument("--grpo-steps", type=int, default=3)
    ap.add_argument("configs", nargs="*", help="LABEL=config.json")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    os.makedirs(os.path.join(a.out, "models"), exist_ok=True)
    items = []
    for spec in a.configs:
        label, cfg = spec.split("=", 1)
        items.append(Item("train", label, cfg, os.path.join(a.out, "models", label)))
    if not a.no_rollout:
        for n in (int(x) for x in a.rollout_n.split(",")):
            stem = a.rollout_label or os.path.splitext(os.path.basename(a.rollout_config))[0]
            label = f"{stem}-n{n}"
            items.append(Item("rollout", label, a.rollout_config, os.path.join(a.out, "models", label), n))
    if not items:
        raise SystemExit("bench: nothing to measure (no configs, and --no-rollout)")

    base = dict(os.environ)
    core, why = pick_coretype(a.coretype, base)
    if core:
        base["OPENBLAS_CORETYPE"] = core
    else:
        base.pop("OPENBLAS_CORETYPE", None)
    if a.wait_policy:
        base["OMP_WAIT_POLICY"] = a.wait_policy
    load0 = os.getloadavg()
    print(f"bench: {len(items)} configs x threads {threads} x {a.runs} runs; load average {load0[0]:.2f} {load0[1]:.2f} "
          f"{load0[2]:.2f} on {os.cpu_count()} CPUs; OPENBLAS_CORETYPE={core or '(unset)'} ({why}; the environment "
          f"had {os.environ.get('OPENBLAS_CORETYPE', '(unset)')}), OMP_WAIT_POLICY={base.get('OMP_WAIT_POLICY', '(unset)')}",
          flush=True)
    for it in items:
        calibrate(a, it, base, threads)
        print(f"  {it.label:<16} tinyseek matmul: {it.matmul} ({it.calibration}); PyTorch ATen: {it.aten} "
              f"({it.pt_calibration})", flush=True)

    rows = []
    for it in items:
        marker = "bench_inputs.safetensors" if it.kind == "train" else "bench_rollout.safetensors"
        matched = 0
        for r in range(a.runs):
            for t in threads:
                ts_env = dict(base, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t))
                if it.matmul != "default":
                    ts_env["TS_MATMUL"] = it.matmul
                pt_env = dict(base, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t), **PT_ENV)
                if it.aten != "default":
                    pt_env["ATEN_CPU_CAPABILITY"] = it.aten
                order = [("tinyseek", ts_command(a, it, t), ts_env), ("pytorch", pt_command(a, it, t), pt_env)]
                if r % 2 == 1 and os.path.exists(os.path.join(it.folder, marker)):
                    order.reverse()
                pair = {}
                for impl, cmd, env in order:
                    load1 = os.getloadavg()[0]
                    res = run(cmd, env, f"{impl} on {it.label} at {t} threads")
                    res.update(run=r, impl=impl, config=it.label, kind=it.kind, threads=t, load1=f"{load1:.2f}")
                    rows.append(res)
                    pair[impl] = res
                    if it.kind == "train":
                        print(f"  {it.label:<16} {t} thr  run {r + 1}  {impl:<8}  train {float(res['train_tok_s']):8.0f}"
                              f"  gen {float(res['gen_tok_s']):8.0f}  prefill {float(res['prefill_tok_s']):8.0f}"
                              f"  tok/s  RSS {float(res['peak_rss_mb']):6.1f} MB  CPU/wall {float(res['train_util']):.2f}"
                              f"  load {load1:.2f}", flush=True)
                    else:
                        print(f"  {it.label:<16} {t} thr  run {r + 1}  {impl:<8}  rollout {float(res['rollout_tok_s']):8.0f}"
                              f" tok/s  GRPO step {float(res['grpo_step_s']):7.3f} s  RSS {float(res['peak_rss_mb']):6.1f} MB"
                              f"  CPU/wall {float(res['rollout_util']):.2f} {float(res['grpo_util']):.2f}"
                              f"  load {load1:.2f}", flush=True)
                if it.kind == "rollout":
                    matched += check_rollout(a, it, (pair["tinyseek"], pair["pytorch"]))
        if it.kind == "rollout" and matched == 0:
            raise SystemExit(f"bench: CHECK FAILED: no run of {it.label} had both programs on the same rollout batch")
        if it.kind == "rollout":
            print(f"  {it.label:<16} checks passed: {it.n} x {a.rollout_new} tokens each side, weights moved, "
                  f"first gradient norms agree ({matched} runs on the same batch)", flush=True)

    keys = ["config", "kind", "impl", "threads", "run", "matmul", "blas_core", "aten"] + METRICS
    with open(os.path.join(a.out, "bench_runs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in rows:
            w.writerow([r.get(k, "") for k in keys])

    summary = []
    for it in items:
        for t in threads:
            ts = [r for r in rows if r["config"] == it.label and r["impl"] == "tinyseek" and r["threads"] == t]
            pt = [r for r in rows if r["config"] == it.label and r["impl"] == "pytorch" and r["threads"] == t]
            s = dict(config=it.label, kind=it.kind, threads=t, runs=len(ts), blas_ts=ts[0]["blas_core"],
                     blas_pt=pt[0]["blas_core"], matmul_ts=ts[0].get("matmul", "?"), aten_pt=pt[0].get("aten", "?"),
                     rollout_n=it.n, load1=med(ts + pt, "load1"), moe=is_moe(it.cfg))
            utils = ("train_util", "gen_util") if it.kind == "train" else ("rollout_util", "grpo_util")
            for k in ("peak_rss_mb",) + utils:
                s["ts_" + k], s["pt_" + k] = med(ts, k), med(pt, k)
            s["rss_frac"] = ratio(s["ts_peak_rss_mb"], s["pt_peak_rss_mb"])
            if it.kind == "train":
                for k in ("train_tok_s", "gen_tok_s", "prefill_tok_s"):
                    s["ts_" + k], s["pt_" + k] = med(ts, k), med(pt, k)
                for k in ("step_gflops", "sgemm_gflops", "sgemm1_gflops", "step_gflop"):
                    s[k] = med(ts, k)
                s["train_x"] = ratio(s["ts_train_tok_s"], s["pt_train_tok_s"])
                # tokens per second of CPU time (all threads): what the wall clock would say on an idle machine
                s["ts_train_cpu_tok_s"] = float(ts[0]["batch"]) * float(ts[0]["seq"]) / (med(ts, "step_cpu_ms") * 1e-3)
                s["pt_train_cpu_tok_s"] = float(pt[0]["batch"]) * float(pt[0]["seq"]) / (med(pt, "step_cpu_ms") * 1e-3)
                s["train_cpu_x"] = ratio(s["ts_train_cpu_tok_s"], s["pt_train_cpu_tok_s"])
                s["gen_x"] = ratio(s["ts_gen_tok_s"], s["pt_gen_tok_s"])
                s["prefill_x"] = ratio(s["ts_prefill_tok_s"], s["pt_prefill_tok_s"])
                s["step_of_sgemm1"] = ratio(s["step_gflops"], s["sgemm1_gflops"])
            else:
                for k in ("rollout_tok_s", "grpo_step_s"):
                    s["ts_" + k], s["pt_" + k] = med(ts, k), med(pt, k)
                s["rollout_x"] = ratio(s["ts_rollout_tok_s"], s["pt_rollout_tok_s"])
                s["grpo_x"] = ratio(s["pt_grpo_step_s"], s["ts_grpo_step_s"])  # > 1: tinyseek's step is shorter
            summary.append(s)
    train = [s for s in summary if s["kind"] == "train"]
    roll = [s for s in summary if s["kind"] == "rollout"]
    for s in train:  # thread scaling of tinyseek's training
        one = [x for x in train if x["config"] == s["config"] and x["threads"] == 1]
        s["ts_scaling"] = s["ts_train_tok_s"] / one[0]["ts_train_tok_s"] if one else float("nan")
        s["pt_scaling"] = s["pt_train_tok_s"] / one[0]["pt_train_tok_s"] if one else float("nan")
        # tokens per CPU-second relative to one thread: 1.0 means threading added no work, so the
        # wall clock would scale with the threads if the machine had those cores free
        s["ts_cpu_eff"] = s["ts_train_cpu_tok_s"] / one[0]["ts_train_cpu_tok_s"] if one else float("nan")
    cols = ["config", "threads", "runs", "ts_train_tok_s", "pt_train_tok_s", "train_x", "ts_gen_tok_s", "pt_gen_tok_s",
            "gen_x", "ts_prefill_tok_s", "pt_prefill_tok_s", "prefill_x", "ts_peak_rss_mb", "pt_peak_rss_mb",
            "rss_frac", "step_gflop", "step_gflops", "sgemm1_gflops", "sgemm_gflops", "step_of_sgemm1", "ts_scaling",
            "pt_scaling", "ts_train_cpu_tok_s", "pt_train_cpu_tok_s", "train_cpu_x", "ts_cpu_eff", "matmul_ts", "blas_ts",
            "blas_pt", "kind", "rollout_n", "ts_rollout_tok_s", "pt_rollout_tok_s", "rollout_x", "ts_grpo_step_s",
            "pt_grpo_step_s", "grpo_x", "ts_train_util", "pt_train_util", "ts_gen_util", "pt_gen_util",
            "ts_rollout_util", "pt_rollout_util", "ts_grpo_util", "pt_grpo_util", "load1", "aten_pt"]
    with open(os.path.join(a.out, "bench.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for s in train + roll:
            w.writerow([(f"{s[c]:.4g}" if isinstance(s[c], float) else s[c]) if c in s else "" for c in cols])

    def kernels(group):
        ts_k = sorted({f"OpenBLAS {s['blas_ts']}" if s["matmul_ts"] == "openblas" else "its own C loops"
                       for s in group})
        pt_k = sorted({f"OpenBLAS {s['blas_pt']}, ATen {s['aten_pt']}" for s in group})
        return f"tinyseek's matmul: {' / '.join(ts_k)}; PyTorch: {' / '.join(pt_k)}"

    wait = base.get("OMP_WAIT_POLICY", "(unset)")
    if train:
        print(f"\nmedians of {a.runs} runs (tinyseek / PyTorch twin; {kernels(train)}; OMP_WAIT_POLICY={wait}):")
        hdr = (f"{'config':<10}{'thr':>4} | {'train tok/s':>17} {'x':>5} | {'generate tok/s':>17} {'x':>5} | "
               f"{'prefill tok/s':>17} {'x':>5} | {'peak RSS MB':>13} {'frac':>5} | {'step GF/s':>9} {'sgemm1':>7}"
               f" {'%':>4} {'2t/1t':>6} | {'train tok/CPU-s':>17} {'x':>5} {'eff':>5}")
        print(hdr)
        print("-" * len(hdr))
        for s in train:
            print(f"{s['config']:<10}{s['threads']:>4} | {s['ts_train_tok_s']:8.0f} {s['pt_train_tok_s']:8.0f} "
                  f"{s['train_x']:5.2f} | {s['ts_gen_tok_s']:8.0f} {s['pt_gen_tok_s']:8.0f} {s['gen_x']:5.1f} | "
                  f"{s['ts_prefill_tok_s']:8.0f} {s['pt_prefill_tok_s']:8.0f} {s['prefill_x']:5.1f} | "
                  f"{s['ts_peak_rss_mb']:6.0f} {s['pt_peak_rss_mb']:6.0f} {s['rss_frac']:5.2f} | "
                  f"{s['step_gflops']:9.1f} {s['sgemm1_gflops']:7.1f} {100 * s['step_of_sgemm1']:4.0f}"
                  f" {s['ts_scaling']:6.2f} | {s['ts_train_cpu_tok_s']:8.0f} {s['pt_train_cpu_tok_s']:8.0f}"
                  f" {s['train_cpu_x']:5.2f} {s['ts_cpu_eff']:5.2f}")
    if roll:
        print(f"\npost-training, medians of {a.runs} runs ({a.rollout_config}: N sequences sampled at once, prompt "
              f"{a.rollout_prompt}, {a.rollout_new} new tokens, temperature 1; GRPO steps on them in groups of "
              f"{a.rollout_group}; tinyseek / PyTorch twin; {kernels(roll)}):")
        hdr = (f"{'config':<16}{'N':>5}{'thr':>4} | {'rollout tok/s':>17} {'x':>5} | {'s / GRPO step':>15} {'x':>5} | "
               f"{'peak RSS MB':>13} {'frac':>5}")
        print(hdr)
        print("-" * len(hdr))
        for s in roll:
            print(f"{s['config']:<16}{s['rollout_n']:>5}{s['threads']:>4} | {s['ts_rollout_tok_s']:8.0f} "
                  f"{s['pt_rollout_tok_s']:8.0f} {s['rollout_x']:5.2f} | {s['ts_grpo_step_s']:7.3f} "
                  f"{s['pt_grpo_step_s']:7.3f} {s['grpo_x']:5.2f} | {s['ts_peak_rss_mb']:6.0f} {s['pt_peak_rss_mb']:6.0f}"
                  f" {s['rss_frac']:5.2f}")
        print("  x: tinyseek's advantage (rollout tok/s tinyseek/PyTorch; s per step PyTorch/tinyseek)")

    print("\nCPU time / wall time per measurement (medians; about the thread count when the cores were free, less "
          "when other work took them), and the load average before the runs:")
    hdr = (f"{'config':<16}{'thr':>4} | {'train':>11} | {'generate':>11} | {'rollout':>11} | {'GRPO step':>11} | "
           f"{'load':>5}")
    print(hdr)
    print("-" * len(hdr))
    for s in train + roll:
        def util(k):  # tinyseek's and PyTorch's, or "-" where the row did not measure it
            v = s.get("ts_" + k)
            return f"{v:5.2f} {s['pt_' + k]:5.2f}" if v == v and v else "-"
        print(f"{s['config']:<16}{s['threads']:>4} | {util('train_util'):>11} | {util('gen_util'):>11} | "
              f"{util('rollout_util'):>11} | {util('grpo_util'):>11} | {s['load1']:5.2f}")

    if train:
        print("\ntargets (ratios, medians):")

    def target(name, ok):
        print(f"  [{'met' if ok else 'NOT met':^7}] {name}")

    for s in train:
        tag = f"{s['config']}, {s['threads']} thr"
        if s["threads"] == 1 and not s["moe"]:
            target(f"{tag}: dense training >= 1.6x PyTorch at 1 thread ({s['train_x']:.2f}x)", s["train_x"] >= 1.6)
        else:
            target(f"{tag}: training >= 1.5x PyTorch ({s['train_x']:.2f}x)", s["train_x"] >= 1.5)
        target(f"{tag}: generation >= 5x PyTorch ({s['gen_x']:.1f}x)", s["gen_x"] >= 5)
        target(f"{tag}: peak RSS <= 1/3 of PyTorch's ({s['rss_frac']:.2f})", s["rss_frac"] <= 1 / 3)
        if s["threads"] == 1:
            bar = 0.6 if s["moe"] else 0.75  # issue 20: dense >= 75% of sgemm, MoE >= 60%
            target(f"{tag}: training step >= {100 * bar:.0f}% of 1-thread sgemm ({100 * s['step_of_sgemm1']:.1f}%)",
                   s["step_of_sgemm1"] >= bar)
        if s["threads"] == 2:
            target(f"{tag}: 2 threads >= 1.7x 1 thread ({s['ts_scaling']:.2f}x; tokens per CPU-second "
                   f"{s['ts_cpu_eff']:.2f}x of 1 thread's)", s["ts_scaling"] >= 1.7)
    load1 = os.getloadavg()
    print(f"\nbench: wrote {a.out}/bench.csv and {a.out}/bench_runs.csv; load average before {load0[0]:.2f} "
          f"{load0[1]:.2f} {load0[2]:.2f}, now {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} (noisy when other work "
          f"shares the machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Chapter 8's tables from scripts/ch08-runs.sh's evaluations and training logs.

    ch08-table.py OUTDIR ELAPSED_SECONDS

Reads OUTDIR/seed*/{ARM}.csv (tinyseek evaluate), OUTDIR/seed*/{ARM}/metrics.csv
(tinyseek grpo) and OUTDIR/seed*/{ARM}.log, and writes, as mean and sample
standard deviation over the seeds:
  OUTDIR/results.csv        model, difficulty "all": greedy pass@1, sampled pass@1, maj@k, pass@k, format, length
  OUTDIR/by_difficulty.csv  model, difficulty, greedy and sampled pass@1, pass@k
  OUTDIR/per_seed.csv       model, seed: greedy and sampled pass@1, pass@k, format rate, sampled pass@1 at difficulty 3
  OUTDIR/passk.csv          k, then mean and sd of pass@k for each model
  OUTDIR/curves.csv         step, then mean and sd over seeds of each RL arm's reward, accuracy, length, KL
  OUTDIR/training.csv       per RL arm: rollout metrics over its first and last 20 steps
  OUTDIR/run.csv            seconds of the whole experiment, per arm: seconds per step and peak memory,
                            the sizes, and how many evaluations were chapter 7's or the base's
and prints the table the chapter quotes."""
import csv
import glob
import hashlib
import os
import re
import statistics
import sys

from posttrain_table import col, load, print_table, stat, write_summaries

out, elapsed = sys.argv[1], int(sys.argv[2])
MODELS = ["base", "zero", "baseq", "zeroq", "sft", "sftmore", "rft", "ppo", "grpo"]
RL_ARMS = ["zero", "zeroq", "rft", "ppo", "grpo"]
LABELS = {"base": "base, R1-Zero's prompt", "zero": "R1-Zero: GRPO from base, R1-Zero's prompt",
          "baseq": "base, question", "zeroq": "R1-Zero: GRPO from base, question",
          "sft": "cold-start SFT (start of the rest)", "sftmore": "SFT + more SFT", "rft": "SFT + online RFT",
          "ppo": "SFT + PPO", "grpo": "SFT + GRPO (R1)"}
seeds = sorted(glob.glob(os.path.join(out, "seed*")))
rows = load(seeds, MODELS)  # (model, difficulty) -> one dict per seed
ks, kmax, diffs = write_summaries(out, MODELS, LABELS, seeds, rows)

# Training curves: the per-step metrics of each RL arm, averaged over seeds
# (rollout metrics repeat over a rollout batch's mu steps; keep every step).
metrics = ["reward", "accuracy", "format_rate", "completion_len", "kl"]
curves = {}  # (arm, step) -> list of rows
for sd in seeds:
    for a in RL_ARMS:
        p = os.path.join(sd, a, "metrics.csv")
        for r in csv.DictReader(open(p)):
            curves.setdefault((a, int(r["step"])), []).append(r)
steps = sorted({s for (_, s) in curves})
with open(os.path.join(out, "curves.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["step"] + [f"{a}_{c}_{s}" for a in RL_ARMS for c in metrics for s in ("mean", "sd")])
    for st in steps:
        cells = []
        for a in RL_ARMS:
            rs = curves.get((a, st), [])
            cells += [f"{v:.4f}" if rs else "" for c in metrics for v in col(rs, c)]
        w.writerow([st] + cells)

# The start and the end of each RL arm's training: rollout metrics averaged over
# its first and its last WINDOW steps, then mean and sd over the seeds.
WINDOW = 20
with open(os.path.join(out, "training.csv"), "w", newline="") as f:
    w = csv.writer(f)
    tm = metrics + ["zero_var_frac", "clip_frac"]
    w.writerow(["arm", "steps"] + [f"{e}_{c}_{s}" for e in ("first", "last") for c in tm for s in ("mean", "sd")])
    for a in RL_ARMS:
        per_seed = [list(csv.DictReader(open(os.path.join(sd, a, "metrics.csv")))) for sd in seeds]
        cells = []
        for e in ("first", "last"):
            for c in tm:
                vals = []
                for rs in per_seed:
                    part = rs[:WINDOW] if e == "first" else rs[-WINDOW:]
                    xs = [float(r[c]) for r in part if r.get(c) not in (None, "", "nan")]
                    if xs:
                        vals.append(statistics.mean(xs))
                m, sdv = stat(vals)
                cells += [f"{m:.4f}", f"{sdv:.4f}"]
        w.writerow([a, len(per_seed[0])] + cells)

LOG = re.compile(r"(\d+) steps in ([\d.]+) s \(([\d.]+) s/step\), peak memory (\d+) MB")
with open(os.path.join(out, "run.csv"), "w", newline="") as f:
    w = csv.writer(f)
    names = ["seeds", "seconds"] + [f"{a}_{c}" for a in RL_ARMS for c in ("s_per_step", "peak_mb")]
    vals = [len(seeds), elapsed]
    for a in RL_ARMS:
        per, mem = [], []
        for sd in seeds:
            m = LOG.search(open(os.path.join(sd, f"{a}.log")).read())
            if m:
                per.append(float(m.group(3)))
                mem.append(float(m.group(4)))
        vals += [f"{statistics.mean(per):.3f}" if per else "", f"{max(mem):.0f}" if mem else ""]
    env = ["STEPS", "MU", "GROUP", "PROMPTS", "LR", "BETA", "ZERO_STEPS", "RL_MIN_DIFFICULTY", "EVAL_PROBLEMS", "EVAL_SAMPLES", "MAX_NEW",
           "TEMPERATURE"]
    # R1-Zero with the paper's prompt: did any weight move? (zero rewards -> zero advantages)
    def digest(path):
        return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None
    base = digest(os.path.join(os.environ.get("CH7", "runs/ch07"), "base", "model.safetensors"))
    unchanged = sum(base is not None and digest(os.path.join(sd, "zero", "model.safetensors")) == base for sd in seeds)
    # Evaluations not run again: chapter 7's, copied (MODEL.reused), and R1-Zero's when it is the base's.
    reused = sum(len(glob.glob(os.path.join(sd, "*.reused"))) for sd in seeds)
    relabelled = sum(open(os.path.join(sd, "eval-zero.log")).read().startswith("the weights are the base")
                     for sd in seeds if os.path.exists(os.path.join(sd, "eval-zero.log")))
    w.writerow(names + [e.lower() for e in env] + ["problems", "zero_seeds_weights_unchanged", "evals_from_ch7",
                                                   "zero_evals_relabelled"])
    w.writerow(vals + [os.environ.get(e, "") for e in env] + [rows[("sft", "all")][0]["problems"], unchanged, reused,
                                                              relabelled])

n = rows[("sft", "all")][0]["problems"]
print(f"chapter 8: {len(seeds)} seeds, {n} test problems, {rows[('sft', 'all')][0]['samples']} samples each, "
      f"{elapsed} s in all")
print_table(rows, MODELS, kmax, diffs, 8)

#!/usr/bin/env python3
"""Chapter 7's tables from the evaluation summaries of scripts/ch07-runs.sh.

    ch07-table.py OUTDIR ELAPSED_SECONDS

Reads OUTDIR/seed*/{base,sft,rs}.csv and writes, as mean and sample standard
deviation over the seeds:
  OUTDIR/results.csv        model, difficulty "all": greedy pass@1, sampled pass@1, maj@k, pass@k, format rate, length
  OUTDIR/by_difficulty.csv  model, difficulty, pass@1 and format rate
  OUTDIR/passk.csv          k, then mean and sd of pass@k for each model (the pass@k curve)
  OUTDIR/run.csv            seeds, seconds the whole experiment took, and the sizes used
and prints the table the chapter quotes."""
import csv
import glob
import os
import statistics
import sys

out, elapsed = sys.argv[1], int(sys.argv[2])
models = ["base", "sft", "rs"]
rows = {}  # (model, difficulty) -> list of dicts, one per seed
seeds = sorted(glob.glob(os.path.join(out, "seed*")))
for sd in seeds:
    for m in models:
        for r in csv.DictReader(open(os.path.join(sd, f"{m}.csv"))):
            rows.setdefault((m, r["difficulty"]), []).append(r)


def stat(rs, col):
    xs = [float(r[col]) for r in rs if r.get(col) not in (None, "", "nan")]
    if not xs:
        return float("nan"), float("nan")
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


cols = ["greedy_pass1", "pass1", "maj_at_n", "format_rate", "greedy_format", "mean_len"]
first = rows[("sft", "all")][0]
ks = [c for c in first if c.startswith("pass_at_")]
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["model", "seeds"] + [f"{c}_{s}" for c in cols + ks for s in ("mean", "sd")])
    for m in models:
        rs = rows[(m, "all")]
        w.writerow([m, len(rs)] + [f"{v:.4f}" for c in cols + ks for v in stat(rs, c)])
diffs = sorted({d for (_, d) in rows if d != "all"}, key=int)
with open(os.path.join(out, "by_difficulty.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["difficulty"] + [f"{m}_{c}_{s}" for m in models for c in ("pass1", "format_rate") for s in ("mean", "sd")])
    for d in diffs:
        w.writerow([d] + [f"{v:.4f}" for m in models for c in ("pass1", "format_rate") for v in stat(rows[(m, d)], c)])
with open(os.path.join(out, "passk.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["k"] + [f"{m}_{s}" for m in models for s in ("mean", "sd")])
    for c in ks:
        w.writerow([c[len("pass_at_"):]] + [f"{v:.4f}" for m in models for v in stat(rows[(m, "all")], c)])
env = {k: os.environ.get(k, "") for k in ("PRETRAIN_STEPS", "SFT_STEPS", "RS_PROMPTS", "RS_SAMPLES", "EVAL_PROBLEMS",
                                          "EVAL_SAMPLES", "MAX_NEW", "TEMPERATURE")}
kept = []
for sd in seeds:
    with open(os.path.join(sd, "rs.jsonl")) as f:
        kept.append(sum(1 for _ in f))
with open(os.path.join(out, "run.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["seeds", "seconds", "rs_kept_mean", "problems_per_difficulty"] + [k.lower() for k in env])
    w.writerow([len(seeds), elapsed, f"{statistics.mean(kept):.1f}", rows[("sft", diffs[0])][0]["problems"]]
               + list(env.values()))

n = rows[("sft", "all")][0]["problems"]
print(f"chapter 7: {len(seeds)} seeds, {n} test problems, {first['samples']} samples each, {elapsed} s in all")
print(f"{'model':<6} {'greedy pass@1':>15} {'pass@1':>15} {'maj@k':>15} {'pass@' + ks[-1][8:]:>15} {'format':>15}")
for m in models:
    rs = rows[(m, "all")]
    cells = ["%.3f ± %.3f" % stat(rs, c) for c in ("greedy_pass1", "pass1", "maj_at_n", ks[-1], "format_rate")]
    print(f"{m:<6} " + " ".join(f"{c:>15}" for c in cells))
print("by difficulty (sampled pass@1):")
for d in diffs:
    print(f"  {d}: " + "  ".join("%s %.3f ± %.3f" % ((m,) + stat(rows[(m, d)], "pass1")) for m in models))

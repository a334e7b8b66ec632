#!/usr/bin/env python3
"""Chapter 7's tables from the evaluation summaries of scripts/ch07-runs.sh.

    ch07-table.py OUTDIR ELAPSED_SECONDS

Reads OUTDIR/seed*/{base,sft,rs}.csv and writes, as mean and sample standard
deviation over the seeds:
  OUTDIR/results.csv        model, difficulty "all": greedy pass@1, sampled pass@1, maj@k, pass@k, format rate, length
  OUTDIR/by_difficulty.csv  model, difficulty, pass@1 and format rate
  OUTDIR/passk.csv          k, then mean and sd of pass@k for each model (the pass@k curve)
  OUTDIR/run.csv            seeds, seconds the whole experiment took, what rejection sampling kept
                            (and how much of it shows the right working), the sizes used, the
                            pretraining's seconds and held-out loss, and how many of the base model's
                            worked-prose answers (OUTDIR/prose.txt) are right
and prints the table the chapter quotes."""
import csv
import glob
import json
import os
import re
import statistics
import sys

QUESTION = re.compile(r"^What is (\d+)([-+])(\d+)\?$")


def working(prompt):
    """The column-by-column working chapter 1's SFT responses write for a+b or a-b (None for other prompts):
    ones column first, "x+y(+1)=s carry c" or "x-y(-1)=d borrow b" (x raised by 10 when it borrows)."""
    m = QUESTION.match(prompt)
    if not m:
        return None
    a, op, b = m.group(1), m.group(2), m.group(3)
    n = max(len(a), len(b))
    a, b = a.zfill(n), b.zfill(n)
    steps, c = [], 0
    for i in range(n - 1, -1, -1):
        x, y = int(a[i]), int(b[i])
        if op == "+":
            s = x + y + c
            steps.append(f"{x}+{y}{'+1' if c else ''}={s} carry {s // 10}")
            c = s // 10
        else:
            borrow = 1 if x - y - c < 0 else 0
            top = x + 10 * borrow
            steps.append(f"{top}-{y}{'-1' if c else ''}={top - y - c} borrow {borrow}")
            c = borrow
    return " ; ".join(steps)


def think(response):
    """The text of a response's think block, without the newline the r1 template starts it with."""
    body = response.split("<think>", 1)[-1].split("</think>", 1)[0]
    return body[1:] if body.startswith("\n") else body

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
env = {k: os.environ.get(k, "") for k in ("PRETRAIN_STEPS", "PRETRAIN_THREADS", "SFT_STEPS", "RS_PROMPTS", "RS_SAMPLES", "EVAL_PROBLEMS",
                                          "EVAL_SAMPLES", "MAX_NEW", "TEMPERATURE")}
kept, right_working = [], 0
for sd in seeds:
    pairs = [json.loads(line) for line in open(os.path.join(sd, "rs.jsonl"))]
    kept.append(len(pairs))
    right_working += sum(think(p["response"]) == working(p["prompt"]) for p in pairs)
# The base model asked in its worked-prose form ("To work out 31 plus 86,", greedy):
# right when its "So the sum/difference is N." gives the answer.
prose = {}
pp = os.path.join(out, "prose.jsonl")
if os.path.exists(pp):
    for p, line in zip((json.loads(x) for x in open(pp)), open(os.path.join(out, "prose.txt"))):
        m = re.search(r"So the (?:sum|difference) is (-?\d+)\.", line)
        r = prose.setdefault(p["difficulty"], [0, 0])
        r[0] += bool(m and m.group(1) == str(p["answer"]))
        r[1] += 1
prose_cells = [sum(r[0] for r in prose.values()), sum(r[1] for r in prose.values())] + \
    [prose.get(int(d), [""])[0] for d in diffs] if prose else [""] * (2 + len(diffs))

# The pretraining's own time and held-out loss, from its last line.
m = re.search(r"in ([\d.]+) s, .*held-out loss ([\d.]+)", open(os.path.join(out, "pretrain.log")).read())
pretrain = [m.group(1), m.group(2)] if m else ["", ""]
with open(os.path.join(out, "run.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["seeds", "seconds", "rs_kept_mean", "rs_kept_sd", "rs_kept_total", "rs_kept_right_working",
                "problems_per_difficulty"] + [k.lower() for k in env] + ["pretrain_seconds", "pretrain_val_loss"] +
               ["prose_right", "prose_problems"] + [f"prose_right_d{d}" for d in diffs])
    w.writerow([len(seeds), elapsed, f"{statistics.mean(kept):.1f}",
                f"{statistics.stdev(kept) if len(kept) > 1 else 0:.1f}", sum(kept), right_working,
                rows[("sft", diffs[0])][0]["problems"]] + list(env.values()) + pretrain + prose_cells)

n = rows[("sft", "all")][0]["problems"]
print(f"chapter 7: {len(seeds)} seeds, {n} test problems, {first['samples']} samples each, {elapsed} s in all")
print(f"{'model':<6} {'greedy pass@1':>15} {'pass@1':>15} {'maj@k':>15} {'pass@' + ks[-1][8:]:>15} {'format':>15}")
for m in models:
    rs = rows[(m, "all")]
    cells = ["%.3f ± %.3f" % stat(rs, c) for c in ("greedy_pass1", "pass1", "maj_at_n", ks[-1], "format_rate")]
    print(f"{m:<6} " + " ".join(f"{c:>15}" for c in cells))
print(f"rejection sampling kept {statistics.mean(kept):.1f} pairs per seed ({sum(kept)} in all), "
      f"{right_working} of them with the right working")
print("by difficulty (sampled pass@1):")
for d in diffs:
    print(f"  {d}: " + "  ".join("%s %.3f ± %.3f" % ((m,) + stat(rows[(m, d)], "pass1")) for m in models))
if prose:
    print(f"base model in its worked-prose form (greedy): {prose_cells[0]} of {prose_cells[1]} answers right (" +
          ", ".join(f"difficulty {d}: {prose[d][0]} of {prose[d][1]}" for d in sorted(prose)) + ")")

#!/usr/bin/env python3
"""make pipeline's tables from scripts/pipeline-runs.sh's evaluations and timings.

    pipeline-table.py OUTDIR ELAPSED_SECONDS

Reads OUTDIR/seed*/STAGE.csv and STAGE.samples.jsonl (tinyseek evaluate), OUTDIR/times.csv
and OUTDIR/seed*/times.csv (seconds per step run here), OUTDIR/reused.csv and
OUTDIR/seed*/reused.csv (the steps read from another chapter's folder, with the seconds its
log gives), OUTDIR/seed*/rs{1,2}.jsonl, and writes, as mean and sample standard deviation
over the seeds:
  OUTDIR/results.csv        stage, difficulty "all": greedy and sampled pass@1, pass@k, format rate,
                            mean length, the seconds the stage took to make (its training steps,
                            here or in the chapter it was read from) and where it was made
  OUTDIR/by_difficulty.csv  stage, difficulty: the same
  OUTDIR/figure.csv         stage: sampled pass@1 and format rate, for all and each difficulty (one row)
  OUTDIR/per_seed.csv       stage, seed: greedy and sampled pass@1, format rate, length
  OUTDIR/compare.csv        pairs of stages: the change in sampled pass@1, its spread over the
                            seeds, and its paired standard error over the test problems
  OUTDIR/run.csv            seconds per step (mean over the seeds for a seed's steps): the steps
                            read from other chapters (their logs' seconds), those run here, and
                            the whole run ("total", wall clock, this run's steps only)
  OUTDIR/sizes.csv          the sizes used, the test problems, what rejection sampling kept
and prints the table the chapter quotes."""
import csv
import glob
import json
import math
import os
import statistics
import sys

from posttrain_table import col, load, stat

out, elapsed = sys.argv[1], int(sys.argv[2])
STAGES = ["base", "sft", "grpo1", "rssft", "grpo2", "student", "distill", "kd"]
LABELS = {"base": "base (pretrained MLA+MoE), question template",
          "sft": "stage 1: cold-start SFT of base",
          "grpo1": "stage 2: GRPO from stage 1",
          "rssft": "stage 3: SFT of base on stage 2's rejection samples + cold start",
          "grpo2": "stage 4: GRPO from stage 3",
          "student": "student base (pretrained dense GQA), question template",
          "distill": "student SFT on stage 4's rejection samples (R1 distillation)",
          "kd": "student, logit-level KD from stage 4 on the same pairs"}
SHORT = {"base": "base", "sft": "cold start", "grpo1": "GRPO 1", "rssft": "RS + SFT", "grpo2": "GRPO 2",
         "student": "student", "distill": "distilled", "kd": "KD"}
# The steps that make each stage's model, for its "seconds" column (pretraining is shared by the seeds).
MAKES = {"base": ["pretrain"], "sft": ["sft"], "grpo1": ["grpo1"], "rssft": ["rejection1", "rssft"],
         "grpo2": ["grpo2"], "student": ["pretrain-student"], "distill": ["rejection2", "distill"], "kd": ["kd"]}
seeds = sorted(glob.glob(os.path.join(out, "seed*")), key=lambda p: int(os.path.basename(p)[4:]))
stages = [st for st in STAGES if all(os.path.exists(os.path.join(sd, f"{st}.csv")) for sd in seeds)]
rows = load(seeds, stages)  # (stage, difficulty) -> one dict per seed


def times(path):
    return {r["stage"]: float(r["seconds"]) for r in csv.DictReader(open(path))}


def reused(path):
    """step -> (the folder it was read from, its seconds there); {} without the file."""
    if not os.path.exists(path):
        return {}
    return {r["stage"]: (r["source"], r["seconds"]) for r in csv.DictReader(open(path))}


shared = times(os.path.join(out, "times.csv"))
per_seed_times = [times(os.path.join(sd, "times.csv")) for sd in seeds]
shared_reused = reused(os.path.join(out, "reused.csv"))
per_seed_reused = [reused(os.path.join(sd, "reused.csv")) for sd in seeds]
# Every step in the run's order (the jobs run side by side, so the logs' order varies).
ORDER = ["pretrain", "pretrain-student", "eval-base", "eval-student", "sft", "eval-sft", "grpo1", "eval-grpo1",
         "rejection1", "rssft", "eval-rssft", "grpo2", "eval-grpo2", "rejection2", "distill", "eval-distill", "kd",
         "eval-kd"]


def source(step):
    """Where a step's output was made: the other chapter's folder (runs/chN), or "here"."""
    if step in shared_reused:
        return shared_reused[step][0]
    srcs = {t[step][0] for t in per_seed_reused if step in t}
    if srcs:
        return os.path.dirname(os.path.dirname(sorted(srcs)[0].rstrip("/")))
    return "here"


def seconds(step):
    """(mean, sd) seconds of one step: the shared run's, else over the seeds; a step read from
    another chapter has that chapter's seconds."""
    if step in shared:
        return shared[step], 0.0
    if step in shared_reused:
        return stat([shared_reused[step][1]])
    if any(step in t for t in per_seed_times):
        return stat([t.get(step) for t in per_seed_times])
    return stat([t[step][1] for t in per_seed_reused if step in t])


cols = ["greedy_pass1", "pass1", "format_rate", "mean_len"]
ks = [c for c in rows[(stages[0], "all")][0] if c.startswith("pass_at_")]
kmax = ks[-1]
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["stage", "short", "label", "seeds"] + [f"{c}_{s}" for c in cols + ["pass_at_k"] for s in ("mean", "sd")] +
               ["seconds", "made"])
    for st in stages:
        rs = rows[(st, "all")]
        secs = sum(seconds(x)[0] for x in MAKES[st])
        w.writerow([st, SHORT[st], LABELS[st], len(rs)] + [f"{v:.4f}" for c in cols + [kmax] for v in col(rs, c)] +
                   [f"{secs:.1f}", source(MAKES[st][-1])])
diffs = sorted({d for (_, d) in rows if d != "all"}, key=int)
with open(os.path.join(out, "by_difficulty.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["stage", "short", "difficulty"] + [f"{c}_{s}" for c in cols for s in ("mean", "sd")])
    for st in stages:
        for d in diffs:
            w.writerow([st, SHORT[st], d] + [f"{v:.4f}" for c in cols for v in col(rows[(st, d)], c)])
# The figure's input: one row per stage, the difficulties side by side.
with open(os.path.join(out, "figure.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["stage", "short"] + [f"{c}_{d}_{s}" for d in ["all"] + diffs for c in ("pass1", "format_rate")
                                    for s in ("mean", "sd")])
    for st in stages:
        w.writerow([st, SHORT[st]] + [f"{v:.4f}" for d in ["all"] + diffs for c in ("pass1", "format_rate")
                                      for v in col(rows[(st, d)], c)])
with open(os.path.join(out, "per_seed.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["stage", "short", "seed"] + cols)
    for st in stages:
        for sd, r in zip(seeds, rows[(st, "all")]):
            w.writerow([st, SHORT[st], os.path.basename(sd)[4:]] + [r[c] for c in cols])


def per_problem(sd, st):
    """Sampled pass rate of each test problem (prompt -> fraction of its samples that are right)."""
    right, n = {}, {}
    for line in open(os.path.join(sd, f"{st}.samples.jsonl")):
        s = json.loads(line)
        right[s["prompt"]] = right.get(s["prompt"], 0) + (1 if s["correct"] else 0)
        n[s["prompt"]] = n.get(s["prompt"], 0) + 1
    return {p: right[p] / n[p] for p in n}


# Is a change between two stages larger than the noise? Two sources: the training seed (the
# spread of the change over the seeds) and the finite test set (the paired standard error of
# the change over the problems, both stages scored on the same problems: sd(q_i - p_i)/sqrt(N)).
# "clear": every seed moves the same way and the mean change is more than twice the standard
# error of a one-seed change; otherwise "within noise".
PAIRS = [("base", "sft"), ("sft", "grpo1"), ("grpo1", "rssft"), ("sft", "rssft"), ("rssft", "grpo2"),
         ("grpo1", "grpo2"), ("sft", "grpo2"), ("student", "distill"), ("distill", "kd"), ("grpo2", "distill")]
with open(os.path.join(out, "compare.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["pair", "before", "after", "before_short", "after_short", "diff_mean", "diff_sd", "diff_min", "diff_max", "se_problems", "verdict"])
    for a, b in PAIRS:
        if a not in stages or b not in stages:
            continue
        diffs_s, ses = [], []
        for sd in seeds:
            pa, pb = per_problem(sd, a), per_problem(sd, b)
            dd = [pb[p] - pa[p] for p in pa]
            diffs_s.append(statistics.mean(dd))
            ses.append(statistics.stdev(dd) / math.sqrt(len(dd)))
        m, s = stat(diffs_s)
        se = math.sqrt(statistics.mean([x * x for x in ses]))
        same = all(x > 0 for x in diffs_s) or all(x < 0 for x in diffs_s)
        verdict = "clear" if same and abs(m) > 2 * se else "within noise"
        w.writerow([f"{a}-{b}", a, b, SHORT[a], SHORT[b], f"{m:.4f}", f"{s:.4f}", f"{min(diffs_s):.4f}", f"{max(diffs_s):.4f}", f"{se:.4f}", verdict])

ran = set(shared) | {x for t in per_seed_times for x in t}
read = set(shared_reused) | {x for t in per_seed_reused for x in t}
steps = [x for x in ORDER if x in ran or x in read] + sorted((ran | read) - set(ORDER))
with open(os.path.join(out, "run.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["step", "where", "seconds_mean", "seconds_sd"])
    for x in steps:
        m, s = seconds(x)
        where = ("shared" if x in shared or x in shared_reused else "per seed") + \
            ("" if x in ran else f", read from {source(x)}")
        w.writerow([x, where, f"{m:.1f}", f"{s:.1f}"])
    w.writerow(["total", "wall clock", elapsed, ""])


def kept(name):
    return [sum(1 for _ in open(os.path.join(sd, name))) for sd in seeds]


env = ["SEEDS", "PRETRAIN_STEPS", "STUDENT_STEPS", "SFT_STEPS", "STEPS", "MU", "GROUP", "PROMPTS", "LR", "BETA",
       "RL_MIN_DIFFICULTY", "RS_PROMPTS", "RS_SAMPLES", "DISTILL_STEPS", "KD", "EVAL_PROBLEMS", "EVAL_SAMPLES", "MAX_NEW",
       "TEMPERATURE"]
first = rows[(stages[0], "all")][0]
with open(os.path.join(out, "sizes.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([e.lower() for e in env] + ["problems", "samples", "rs_prompts_total", "rs1_kept_mean", "rs1_kept_sd",
                                           "rs2_kept_mean", "rs2_kept_sd", "seconds", "base_from", "student_from",
                                           "sft_from", "grpo1_from"])
    k1, k2 = stat(kept("rs1.jsonl")), stat(kept("rs2.jsonl"))
    w.writerow([os.environ.get(e, "") for e in env] + [first["problems"], first["samples"],
               int(os.environ.get("RS_PROMPTS", "0")) * len(diffs), f"{k1[0]:.1f}", f"{k1[1]:.1f}", f"{k2[0]:.1f}",
               f"{k2[1]:.1f}", elapsed] + [source(x) for x in ("pretrain", "pretrain-student", "sft", "grpo1")])

print(f"make pipeline: {len(seeds)} seed(s), {first['problems']} test problems, {first['samples']} samples each, "
      f"{elapsed} s in all")
print(f"{'stage':<8} {'greedy pass@1':>15} {'pass@1':>15} {'pass@' + kmax[8:]:>15} {'format':>15} {'length':>7} {'seconds':>8}")
for st in stages:
    rs = rows[(st, "all")]
    cells = ["%.3f ± %.3f" % col(rs, c) for c in ("greedy_pass1", "pass1", kmax, "format_rate")]
    secs = sum(seconds(x)[0] for x in MAKES[st])
    print(f"{st:<8} " + " ".join(f"{c:>15}" for c in cells) + f" {col(rs, 'mean_len')[0]:7.1f} {secs:8.1f}")
print("by difficulty (sampled pass@1):")
for d in diffs:
    print(f"  {d}: " + "  ".join("%s %.3f ± %.3f" % ((st,) + col(rows[(st, d)], "pass1")) for st in stages))
print(f"rejection sampling kept {k1[0]:.1f} (stage 3) and {k2[0]:.1f} (distillation) pairs per seed")
print("changes in sampled pass@1 (mean over seeds; se: paired, over the test problems):")
for r in csv.DictReader(open(os.path.join(out, "compare.csv"))):
    print(f"  {r['before']:>7} -> {r['after']:<7} {float(r['diff_mean']):+.3f} (seeds {float(r['diff_min']):+.3f} .. "
          f"{float(r['diff_max']):+.3f}, se {float(r['se_problems']):.3f}): {r['verdict']}")
print("seconds per step: " + ", ".join(f"{x} {seconds(x)[0]:.0f}" + ("" if x in ran else f" ({source(x)})")
                                      for x in steps) + f"; total {elapsed}")

#!/usr/bin/env python3
"""Chapter 9's tables from scripts/ch09-runs.sh's evaluations and training logs.

    ch09-table.py OUTDIR ELAPSED_SECONDS

Reads OUTDIR/seed*/{ARM}.csv (tinyseek evaluate), OUTDIR/seed*/{ARM}.log and
seconds.csv, OUTDIR/seed*/teacher_pairs.jsonl, OUTDIR/pretrain.log, and writes,
as mean and sample standard deviation over the seeds:
  OUTDIR/results.csv        model, difficulty "all": greedy pass@1, sampled pass@1, maj@k, pass@k, format, length
  OUTDIR/by_difficulty.csv  model, difficulty, greedy and sampled pass@1, pass@k, format rate
  OUTDIR/per_seed.csv       model, seed: greedy and sampled pass@1, pass@k, format rate, sampled pass@1 at difficulty 3
  OUTDIR/passk.csv          k, then mean and sd of pass@k for each model
  OUTDIR/arms.csv           model, short name, sampled pass@1 (mean, sd) over all problems and per difficulty (the figure)
  OUTDIR/cost.csv           per student arm: optimizer steps, pairs per step, completions sampled (by whom),
                            teacher forwards, wall seconds of its training (mean over seeds); for the GRPO
                            arms the rollouts' accuracy and zero-variance fraction, for the logit-KD arms
                            the student's top-token agreement with the teacher, over the first and last 20 steps;
                            for the arms trained from the student base, the last step's training loss and
                            the held-out response loss (from the logs)
  OUTDIR/run.csv            the whole experiment: seconds, the settings, the student's and the teacher's
                            parameter counts, pretraining losses, the kept teacher pairs
and prints the table the chapter quotes. TEACHER (the checkpoint folder) and
TEACHER_ARM come from the environment."""
import csv
import glob
import json
import os
import re
import statistics
import sys

from posttrain_table import col, load, print_table, stat, write_summaries

out, elapsed = sys.argv[1], int(sys.argv[2])
MODELS = ["teacher", "sft", "grpo", "grpo3", "seqkd", "logitkd", "logitkd_t2"]
teacher_arm = os.environ.get("TEACHER_ARM", "?")
LABELS = {"teacher": f"teacher (chapter 8's {teacher_arm}, seed 1)", "sft": "student: cold-start SFT (no teacher)",
          "grpo": "student: SFT + GRPO (RL, no teacher)",
          "grpo3": "student: SFT + GRPO on chapter 8's prompts (difficulty 3 only)",
          "seqkd": "student: SFT on the teacher's samples (sequence KD)",
          "logitkd": f"student: logit KD on the cold-start pairs, T = {os.environ.get('KD_TEMPERATURE', '?')}",
          "logitkd_t2": f"student: logit KD on the cold-start pairs, T = {os.environ.get('KD_TEMPERATURE_ALT', '?')}"}
seeds = sorted(glob.glob(os.path.join(out, "seed*")))
rows = load(seeds, MODELS)  # (model, difficulty) -> one dict per seed
ks, kmax, diffs = write_summaries(out, MODELS, LABELS, seeds, rows)

SHORT = {"teacher": "teacher", "sft": "SFT", "grpo": "SFT+GRPO", "grpo3": "SFT+GRPO (d3)", "seqkd": "seq. KD",
         "logitkd": f"logit KD T={os.environ.get('KD_TEMPERATURE', '?')}",
         "logitkd_t2": f"logit KD T={os.environ.get('KD_TEMPERATURE_ALT', '?')}"}
with open(os.path.join(out, "arms.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["model", "short", "all_mean", "all_sd"] + [f"d{d}_{s}" for d in diffs for s in ("mean", "sd")])
    for m in MODELS:
        w.writerow([m, SHORT[m]] + [f"{v:.4f}" for d in ["all"] + diffs for v in col(rows[(m, d)], "pass1")])

# What each arm cost: optimizer steps on the student, completions sampled and by
# whom, the teacher's forward passes; wall seconds as this machine measured them.
E = os.environ
steps, batch, grpo_steps = int(E["STEPS"]), int(E["BATCH"]), int(E["GRPO_STEPS"])
rollouts = grpo_steps // int(E["MU"]) * int(E["PROMPTS"]) * int(E["GROUP"])
rl_train = os.path.join(E.get("DATA", "runs/ch01/data"), "rl_train.jsonl")
per_diff = {}
for line in open(rl_train):
    d = json.loads(line)["difficulty"]
    per_diff[d] = per_diff.get(d, 0) + 1
rs_limit = int(E["RS_PROMPTS"])
teacher_prompts = sum(min(n, rs_limit) if rs_limit > 0 else n for n in per_diff.values())
teacher_samples = teacher_prompts * int(E["RS_SAMPLES"])
kept = [sum(1 for _ in open(os.path.join(sd, "teacher_pairs.jsonl"))) for sd in seeds]


def seconds(name):
    per = []
    for sd in seeds:
        for r in csv.DictReader(open(os.path.join(sd, "seconds.csv"))):
            if r["step"] == name:
                per.append(float(r["seconds"]))
    return statistics.mean(per) if per else float("nan")


WINDOW = 20  # steps averaged at the start and at the end of a run


def window(arm, col_name, end):
    """Mean over seeds of the per-step column averaged over the run's first or last WINDOW steps."""
    vals = []
    for sd in seeds:
        rs = list(csv.DictReader(open(os.path.join(sd, arm, "metrics.csv"))))
        part = rs[:WINDOW] if end == "first" else rs[-WINDOW:]
        xs = [float(r[col_name]) for r in part if r.get(col_name) not in (None, "", "nan")]
        if xs:
            vals.append(statistics.mean(xs))
    return f"{statistics.mean(vals):.4f}" if vals else ""


FINAL = re.compile(r"final loss ([\d.]+), held-out response loss ([\d.]+)")


def final_losses(arm):
    """Mean over seeds of the last step's training loss and the held-out response loss (from ARM.log)."""
    tr, ho = [], []
    for sd in seeds:
        m = FINAL.search(open(os.path.join(sd, f"{arm}.log")).read())
        if m:
            tr.append(float(m.group(1)))
            ho.append(float(m.group(2)))
    return [f"{statistics.mean(tr):.4f}" if tr else "", f"{statistics.mean(ho):.4f}" if ho else ""]


with open(os.path.join(out, "cost.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["arm", "label", "student_steps", "pairs_per_step", "student_samples", "teacher_samples",
                "teacher_forward_pairs", "train_seconds", "sample_seconds",
                "first_accuracy", "last_accuracy", "first_zero_var_frac", "last_zero_var_frac", "first_agree", "last_agree",
                "final_train_loss", "final_heldout_loss"])
    none = ["", "", "", "", "", ""]
    w.writerow(["sft", LABELS["sft"], steps, batch, 0, 0, 0, f"{seconds('sft'):.1f}", "0"] + none + final_losses("sft"))
    for g in ("grpo", "grpo3"):
        w.writerow([g, LABELS[g], steps + grpo_steps, batch, rollouts, 0, 0,
                    f"{seconds('sft') + seconds(g):.1f}", "0",
                    window(g, "accuracy", "first"), window(g, "accuracy", "last"),
                    window(g, "zero_var_frac", "first"), window(g, "zero_var_frac", "last"), "", "", "", ""])
    w.writerow(["seqkd", LABELS["seqkd"], steps, batch, 0, teacher_samples, 0, f"{seconds('seqkd'):.1f}",
                f"{seconds('teacher-samples'):.1f}"] + none + final_losses("seqkd"))
    for a in ("logitkd", "logitkd_t2"):
        w.writerow([a, LABELS[a], steps, batch, 0, 0, steps * batch, f"{seconds(a):.1f}", "0", "", "", "", "",
                    window(a, "agree", "first"), window(a, "agree", "last")] + final_losses(a))

# Parameter counts from the checkpoints' safetensors headers (8-byte length, JSON, float32 data).
def params(folder):
    with open(os.path.join(folder, "model.safetensors"), "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
    total = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        c = 1
        for s in v["shape"]:
            c *= s
        total += c
    return total


PRE = re.compile(r"final loss ([\d.]+), held-out loss ([\d.]+)")
pre = PRE.search(open(os.path.join(out, "pretrain.log")).read())
env = ["PRETRAIN_STEPS", "PRETRAIN_BATCH", "PRETRAIN_SEQ", "STEPS", "BATCH", "RS_PROMPTS", "RS_SAMPLES", "ALPHA",
       "KD_TEMPERATURE", "KD_TEMPERATURE_ALT", "GRPO_STEPS", "MU", "GROUP", "PROMPTS", "LR", "BETA", "RL_MIN_DIFFICULTY", "EVAL_PROBLEMS",
       "EVAL_SAMPLES", "MAX_NEW", "TEMPERATURE"]
kept_mean, kept_sd = stat(kept)
with open(os.path.join(out, "run.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["seeds", "seconds", "teacher_arm", "student_params", "teacher_params", "pretrain_loss",
                "pretrain_heldout_loss", "teacher_prompts", "teacher_samples", "kept_mean", "kept_sd", "grpo_rollouts",
                "problems"] + [e.lower() for e in env])
    w.writerow([len(seeds), elapsed, teacher_arm, params(os.path.join(out, "student-base")),
                params(E.get("TEACHER", "")), pre.group(1) if pre else "", pre.group(2) if pre else "",
                teacher_prompts, teacher_samples, f"{kept_mean:.1f}", f"{kept_sd:.1f}", rollouts,
                rows[("sft", "all")][0]["problems"]] + [E.get(e, "") for e in env])

n = rows[("sft", "all")][0]["problems"]
print(f"chapter 9: {len(seeds)} seeds, {n} test problems, {rows[('sft', 'all')][0]['samples']} samples each, "
      f"{elapsed} s in all")
print(f"teacher: chapter 8's {teacher_arm}; the teacher kept {kept_mean:.1f} ± {kept_sd:.1f} of its "
      f"{teacher_samples} samples per seed for sequence KD")
print_table(rows, MODELS, kmax, diffs, 10)
print("per seed (sampled pass@1): " + "  ".join(
    m + " " + "/".join("%.3f" % float(r["pass1"]) for r in rows[(m, "all")]) for m in MODELS))

"""What chapters 8, 9 and the pipeline's table scripts share: reading every
seed's evaluation CSVs (`tinyseek evaluate --csv`, one row per difficulty and
one for "all"), mean ± sd over the seeds, and the four summaries chapters 8
and 9 both write (results.csv, by_difficulty.csv, per_seed.csv, passk.csv).
"""
import csv
import os
import statistics


def load(seeds, models):
    """(model, difficulty) -> the evaluation rows of that model, one per seed folder, in seeds' order."""
    rows = {}
    for sd in seeds:
        for m in models:
            for r in csv.DictReader(open(os.path.join(sd, f"{m}.csv"))):
                rows.setdefault((m, r["difficulty"]), []).append(r)
    return rows


def stat(xs):
    """Mean and sample sd of the numbers among xs (empty cells skipped; sd 0 for one value)."""
    xs = [float(x) for x in xs if x not in (None, "", "nan")]
    if not xs:
        return float("nan"), float("nan")
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def col(rs, c):
    """stat() of column c over the rows rs."""
    return stat([r.get(c) for r in rs])


def write_summaries(out, models, labels, seeds, rows):
    """results.csv, by_difficulty.csv, per_seed.csv and passk.csv into out.

    Returns (ks, kmax, diffs): the pass_at_* columns, the largest, and the difficulties."""
    cols = ["greedy_pass1", "pass1", "maj_at_n", "format_rate", "mean_len"]
    ks = [c for c in rows[(models[0], "all")][0] if c.startswith("pass_at_")]
    kmax = ks[-1]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "label", "seeds"] + [f"{c}_{s}" for c in cols + ["pass_at_k"] for s in ("mean", "sd")])
        for m in models:
            rs = rows[(m, "all")]
            w.writerow([m, labels[m], len(rs)] + [f"{v:.4f}" for c in cols + [kmax] for v in col(rs, c)])
    diffs = sorted({d for (_, d) in rows if d != "all"}, key=int)
    per_diff = ("greedy_pass1", "pass1", kmax, "format_rate")
    with open(os.path.join(out, "by_difficulty.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "label", "difficulty"] +
                   [f"{c}_{s}" for c in ("greedy_pass1", "pass1", "pass_at_k", "format_rate") for s in ("mean", "sd")])
        for m in models:
            for d in diffs:
                w.writerow([m, labels[m], d] + [f"{v:.4f}" for c in per_diff for v in col(rows[(m, d)], c)])
    with open(os.path.join(out, "per_seed.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "label", "seed", "greedy_pass1", "pass1", "pass_at_k", "format_rate", "pass1_d3"])
        for m in models:
            for i, sd in enumerate(seeds):
                r, r3 = rows[(m, "all")][i], rows[(m, "3")][i]
                w.writerow([m, labels[m], os.path.basename(sd)[4:], r["greedy_pass1"], r["pass1"], r[kmax],
                            r["format_rate"], r3["pass1"]])
    with open(os.path.join(out, "passk.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["k"] + [f"{m}_{s}" for m in models for s in ("mean", "sd")])
        for c in ks:
            w.writerow([c[len("pass_at_"):]] + [f"{v:.4f}" for m in models for v in col(rows[(m, "all")], c)])
    return ks, kmax, diffs


def print_table(rows, models, kmax, diffs, width):
    """Print the models' mean ± sd table (greedy pass@1, pass@1, maj@k, pass@k, format, length),
    then sampled pass@1 by difficulty: the summary both chapters 8 and 9 end with."""
    print(f"{'model':<{width}} {'greedy pass@1':>15} {'pass@1':>15} {'maj@k':>15} {'pass@' + kmax[8:]:>15} "
          f"{'format':>15} {'length':>7}")
    for m in models:
        rs = rows[(m, "all")]
        cells = ["%.3f ± %.3f" % col(rs, c) for c in ("greedy_pass1", "pass1", "maj_at_n", kmax, "format_rate")]
        print(f"{m:<{width}} " + " ".join(f"{c:>15}" for c in cells) + f" {col(rs, 'mean_len')[0]:7.1f}")
    print("by difficulty (sampled pass@1):")
    for d in diffs:
        print(f"  {d}: " + "  ".join("%s %.3f ± %.3f" % ((m,) + col(rows[(m, d)], "pass1")) for m in models))

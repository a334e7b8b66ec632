# make bench: tinyseek and its PyTorch twin, on the same model, batch and
# prompt, at 1 and 2 threads (medians). Top: training tokens/s (whole steps:
# forward, backward, AdamW; batches of 16 x 128) and generation tokens/s
# (batch 1, a 16-token prompt, 256 new tokens, KV cache). Bottom, when the run
# measured post-training: rollout tokens/s (N sequences sampled at once
# through the KV cache) and seconds per GRPO step on them.
#
# input: runs/bench/bench.csv
# made-by: make bench
# optional: only make bench writes its input
#
# bench.csv columns: config,threads,runs,ts_train_tok_s,pt_train_tok_s,train_x,
# ts_gen_tok_s,pt_gen_tok_s,gen_x,... kind (30: train or rollout), rollout_n,
# ts_rollout_tok_s (32), pt_rollout_tok_s, rollout_x, ts_grpo_step_s (35),
# pt_grpo_step_s, ... (see scripts/bench.py); the training rows come first.

set datafile separator comma
f = "runs/bench/bench.csv"
stats f skip 1 using (strcol(30) eq "rollout" ? 1 : 0) nooutput
n_rl = int(STATS_sum)
n_tr = int(STATS_records) - n_rl
set multiplot layout (n_tr > 0 && n_rl > 0 ? 2 : 1),2 title "tinyseek vs its PyTorch twin (same model, same work; medians)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set key top left
set border 3
set xtics nomirror rotate by -30
set ytics nomirror
set yrange [0:*]
if (n_tr > 0) {
    set title "training (forward + backward + AdamW)"
    set ylabel "tokens / s"
    plot f skip 1 every ::0::(n_tr - 1) using 4:xtic(sprintf("%s, %d thr", strcol(1), column(2))) \
         lc rgb "#08519c" title "tinyseek", "" skip 1 every ::0::(n_tr - 1) using 5 lc rgb "#fd8d3c" title "PyTorch"
    set title "generation (batch 1, KV cache)"
    plot f skip 1 every ::0::(n_tr - 1) using 7:xtic(sprintf("%s, %d thr", strcol(1), column(2))) \
         lc rgb "#08519c" title "tinyseek", "" skip 1 every ::0::(n_tr - 1) using 8 lc rgb "#fd8d3c" title "PyTorch"
}
if (n_rl > 0) {
    set title "rollouts (N sequences at once, KV cache)"
    set ylabel "tokens / s"
    plot f skip 1 every ::n_tr using 32:xtic(sprintf("N %d, %d thr", column(31), column(2))) \
         lc rgb "#08519c" title "tinyseek", "" skip 1 every ::n_tr using 33 lc rgb "#fd8d3c" title "PyTorch"
    set title "a GRPO step on them"
    set ylabel "seconds (lower is better)"
    plot f skip 1 every ::n_tr using 35:xtic(sprintf("N %d, %d thr", column(31), column(2))) \
         lc rgb "#08519c" title "tinyseek", "" skip 1 every ::n_tr using 36 lc rgb "#fd8d3c" title "PyTorch"
}
unset multiplot

# make bench: training and generation tokens/s of tinyseek and of its PyTorch
# twin, on the same model, batch and prompt, at 1 and 2 threads (medians).
# Training: whole steps (forward, backward, AdamW) on batches of 16 x 128;
# generation: batch 1, a 16-token prompt, 256 new tokens with a KV cache.
#
# input: runs/bench/bench.csv
# made-by: make bench
# optional: only make bench writes its input
#
# bench.csv columns: config,threads,runs,ts_train_tok_s,pt_train_tok_s,train_x,
# ts_gen_tok_s,pt_gen_tok_s,gen_x,... (see scripts/bench.py)

set datafile separator comma
set multiplot layout 1,2 title "tinyseek vs its PyTorch twin (same model, same batch; medians)"
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
set title "training (forward + backward + AdamW)"
set ylabel "tokens / s"
plot "runs/bench/bench.csv" skip 1 using 4:xtic(sprintf("%s, %d thr", strcol(1), column(2))) lc rgb "#08519c" title "tinyseek", \
     "" skip 1 using 5 lc rgb "#fd8d3c" title "PyTorch"
set title "generation (batch 1, KV cache)"
plot "runs/bench/bench.csv" skip 1 using 7:xtic(sprintf("%s, %d thr", strcol(1), column(2))) lc rgb "#08519c" title "tinyseek", \
     "" skip 1 using 8 lc rgb "#fd8d3c" title "PyTorch"
unset multiplot

# Chapter 3: held-out loss (every 25 steps) of the four attention variants,
# trained with the same data order, steps and seeds at matched parameter count
# (configs/ch03-*.json): multi-head (8 key/value heads), grouped-query with 4
# and with 2, multi-query (1).
#
# input: runs/ch03/mha/metrics.csv
# input: runs/ch03/gqa-kv4/metrics.csv
# input: runs/ch03/gqa-kv2/metrics.csv
# input: runs/ch03/mqa/metrics.csv
# made-by: make ch3
#
# metrics.csv columns: step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s
# (val_loss is "nan" on steps without an evaluation). The y range starts at 0.6
# and stops at 3 nats, cutting off the first evaluations.

set datafile separator comma
set datafile missing "nan"
set title "Sharing keys and values (chapter 3): held-out loss at matched parameter count"
set xlabel "step"
set ylabel "held-out cross-entropy (nats per token)"
set logscale y
set yrange [0.6:3]   # the first evaluations (up to 5.6 nats) are cut off: the differences are at the bottom
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror (0.6, 0.7, 0.8, 0.9, 1, 1.5, 2, 3)
plot "runs/ch03/mha/metrics.csv" skip 1 using 1:3 with linespoints pt 7 ps 0.7 lw 2 lc rgb "#08519c" title "MHA (8 kv heads)", \
     "runs/ch03/gqa-kv4/metrics.csv" skip 1 using 1:3 with linespoints pt 5 ps 0.7 lw 2 lc rgb "#31a354" title "GQA (4 kv heads)", \
     "runs/ch03/gqa-kv2/metrics.csv" skip 1 using 1:3 with linespoints pt 9 ps 0.8 lw 2 lc rgb "#fd8d3c" title "GQA (2 kv heads)", \
     "runs/ch03/mqa/metrics.csv" skip 1 using 1:3 with linespoints pt 11 ps 0.8 lw 2 lc rgb "#d62728" title "MQA (1 kv head)"

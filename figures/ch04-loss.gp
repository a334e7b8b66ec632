# Chapter 4: held-out loss of the four attentions trained on the same data,
# steps and seeds, at the same parameter count (chapter 3's configs; 8 query
# heads each): multi-head (MHA), grouped-query with 4 and 2 key/value heads
# (GQA), multi-query (MQA) and multi-head latent attention (MLA). The key gives
# each model's parameter count and the KV cache it allocates per token.
#
# input: runs/ch04/mha/metrics.csv
# input: runs/ch04/gqa4/metrics.csv
# input: runs/ch04/gqa2/metrics.csv
# input: runs/ch04/mqa/metrics.csv
# input: runs/ch04/mla/metrics.csv
# input: runs/ch04/summary.csv
# made-by: make ch4
#
# metrics.csv columns: step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s
# (val_loss is "nan" between evaluations). summary.csv: attention,config,params,
# kv_bytes_per_token,final_val_loss,decode_tps_ctx64,decode_tps_ctx1024
# (rows: mha, gqa4, gqa2, mqa, mla-naive, mla-absorbed).

set datafile separator comma
set datafile missing "nan"
field(row, col) = system(sprintf("awk -F, 'NR==%d {print $%d}' runs/ch04/summary.csv", row, col))
label(row, name) = sprintf("%s: %.0fK parameters, KV cache %s B/token", name, real(field(row, 3)) / 1000, field(row, 4))
set title "MHA, GQA, MQA and MLA on the toy data (chapter 4), from step 50"
set xlabel "step (8 x 64 tokens)"
set ylabel "held-out cross-entropy (nats per token)"
set xrange [50:*]
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch04/mha/metrics.csv" skip 1 using 1:3 with linespoints pt 7 ps 0.7 lw 2 lc rgb "#636363" title label(2, "MHA"), \
     "runs/ch04/gqa4/metrics.csv" skip 1 using 1:3 with linespoints pt 5 ps 0.7 lw 2 lc rgb "#1b9e77" title label(3, "GQA, 4 kv heads"), \
     "runs/ch04/gqa2/metrics.csv" skip 1 using 1:3 with linespoints pt 4 ps 0.7 lw 1.5 dt 2 lc rgb "#1b9e77" title label(4, "GQA, 2 kv heads"), \
     "runs/ch04/mqa/metrics.csv" skip 1 using 1:3 with linespoints pt 9 ps 0.7 lw 2 lc rgb "#7570b3" title label(5, "MQA"), \
     "runs/ch04/mla/metrics.csv" skip 1 using 1:3 with linespoints pt 13 ps 0.8 lw 2 lc rgb "#d95f02" title label(7, "MLA (absorbed)")

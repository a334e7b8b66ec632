# Chapter 4: what each attention costs at inference (KV cache bytes per token,
# as allocated by tinyseek in fp32, all 4 layers) against what it reached
# (final held-out loss, same data, steps and seeds). MLA's two points are the
# same trained model: its naive cache holds full per-head keys and values, its
# absorbed cache only the latent.
#
# input: runs/ch04/summary.csv
# made-by: make ch4
#
# summary.csv columns: attention,config,params,kv_bytes_per_token,
# final_val_loss,decode_tps_ctx64,decode_tps_ctx1024

set datafile separator comma
set title "KV cache per token against held-out loss (chapter 4)"
set xlabel "KV cache per token (bytes, fp32, all layers; log scale)"
set ylabel "final held-out cross-entropy (nats per token)"
set logscale x 2
set xrange [256:8192]
set offsets 0, 0, 0.01, 0.01
set grid lc rgb "#dddddd"
set key off
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch04/summary.csv" skip 1 using 4:5 with points pt 7 ps 1.5 lc rgb "#d95f02", \
     "" skip 1 using 4:5:(strcol(1)) with labels offset 0, 1.2 font ",10"

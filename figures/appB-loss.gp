# Appendix B: chapter 5's MoE model trained in float32, in simulated FP8 with
# DeepSeek-V3's fine-grained scales (1x128 activation tiles, 128x128 weight
# blocks) and in FP8 with one scale per tensor. Top: the training loss of seed
# 1 (the runs of a seed see the same batches). Bottom: the relative gap of each
# run's training loss to float32's, |L - L_fp32| / L_fp32, step by step, mean
# over the three seeds, smoothed over 10 steps, with the gap between two float32
# runs that differ only in the order their sums are added (the other sgemm):
# the noise floor. V3 reports a relative error below 0.25% (dotted).
#
# input: runs/appB/fp32-s1/metrics.csv
# input: runs/appB/fp8-tile-s1/metrics.csv
# input: runs/appB/fp8-tensor-s1/metrics.csv
# input: runs/appB/gap.csv
# input: runs/appB/fp32-alt-s1/metrics.csv
# made-by: make appB
#
# metrics.csv columns: step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s;
# gap.csv: step,fp8_tile_gap_pct,fp8_tensor_gap_pct,fp32_alt_gap_pct

set datafile separator comma
set datafile missing "nan"
set multiplot layout 2,1 title "FP8 training vs float32 (appendix B): chapter 5's MoE model"
set grid ytics lc rgb "#dddddd"
set border 3
set xtics nomirror
set ytics nomirror
set key top right
set lmargin 12
set ylabel "training loss (nats per token)"
set xrange [20:*]
set yrange [*:*]
plot "runs/appB/fp32-s1/metrics.csv" skip 1 using 1:2 with lines lw 2 lc rgb "#636363" title "float32", \
     "runs/appB/fp8-tile-s1/metrics.csv" skip 1 using 1:2 with lines lw 1 lc rgb "#d95f02" title "FP8, 1x128 / 128x128 scales", \
     "runs/appB/fp8-tensor-s1/metrics.csv" skip 1 using 1:2 with lines lw 1 dt 2 lc rgb "#7570b3" title "FP8, one scale per tensor"
# running mean over the last 10 steps of each column
samples(x) = $0 > 9 ? 10 : ($0 + 1)
init(x) = (b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = b8 = b9 = 0, c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = c8 = c9 = 0, \
           d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = d8 = d9 = 0)
shiftb(x) = (b9 = b8, b8 = b7, b7 = b6, b6 = b5, b5 = b4, b4 = b3, b3 = b2, b2 = b1, b1 = b0, b0 = x)
shiftc(x) = (c9 = c8, c8 = c7, c7 = c6, c6 = c5, c5 = c4, c4 = c3, c3 = c2, c2 = c1, c1 = c0, c0 = x)
shiftd(x) = (d9 = d8, d8 = d7, d7 = d6, d6 = d5, d5 = d4, d4 = d3, d3 = d2, d2 = d1, d1 = d0, d0 = x)
avgd(x) = (shiftd(x), (d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + d9) / samples($0))
avgb(x) = (shiftb(x), (b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8 + b9) / samples($0))
avgc(x) = (shiftc(x), (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9) / samples($0))
set xlabel "step (16 x 64 tokens)"
set ylabel "|L - L_{fp32}| / L_{fp32} (%)"
set yrange [0:*]
set key top right
plot dummy = init(0), \
     "runs/appB/gap.csv" skip 1 using 1:(avgb($2)) with lines lw 2 lc rgb "#d95f02" title "FP8, fine-grained scales", \
     "runs/appB/gap.csv" skip 1 using 1:(avgc($3)) with lines lw 2 dt 2 lc rgb "#7570b3" title "FP8, one scale per tensor", \
     "runs/appB/gap.csv" skip 1 using 1:(avgd($4)) with lines lw 2 lc rgb "#636363" title "float32, the other sgemm (noise floor)", \
     0.25 with lines lw 1 dt 3 lc rgb "#999999" title "V3's 0.25%"
unset multiplot

# Chapter 5 (a): held-out loss of the dense baseline and of the same model with
# DeepSeekMoE layers at matched *activated* parameters (1 shared + 3 of 16
# routed experts of 64 = the dense 256-wide FFN), balanced by the bias update.
# The key gives each model's total and activated parameter counts.
#
# input: runs/ch05/dense/metrics.csv
# input: runs/ch05/moe-free/metrics.csv
# input: runs/ch05/moe-aux/metrics.csv
# input: runs/ch05/params.csv
# made-by: make ch5
#
# metrics.csv columns: step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s
# (val_loss is "nan" between evaluations). params.csv:
# model,config,total_params,active_params,final_val_loss,tokens_per_s

set datafile separator comma
set datafile missing "nan"
field(row, col) = system(sprintf("awk -F, 'NR==%d {print $%d}' runs/ch05/params.csv", row, col))
label(row, name) = sprintf("%s: %.0fK total, %.0fK active", name, real(field(row, 3)) / 1000, real(field(row, 4)) / 1000)
set title "Dense vs DeepSeekMoE at matched activated parameters (chapter 5), from step 60"
set xlabel "step (16 x 64 tokens)"
set ylabel "held-out cross-entropy (nats per token)"
# The first steps, where every run falls from 5.6 nats alike, are left out.
set xrange [60:*]
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch05/dense/metrics.csv" skip 1 using 1:3 with linespoints pt 7 ps 0.7 lw 2 lc rgb "#636363" title label(2, "dense"), \
     "runs/ch05/moe-free/metrics.csv" skip 1 using 1:3 with linespoints pt 5 ps 0.7 lw 2 lc rgb "#d95f02" title label(3, "MoE, bias balancing"), \
     "runs/ch05/moe-aux/metrics.csv" skip 1 using 1:3 with linespoints pt 9 ps 0.6 lw 1 dt 2 lc rgb "#7570b3" title "MoE, auxiliary loss instead of the bias"

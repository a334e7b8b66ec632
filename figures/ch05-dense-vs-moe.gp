# Chapter 5 (a): held-out loss of the dense baseline and of the same model with
# DeepSeekMoE layers at matched *activated* parameters (1 shared + 3 of 16
# routed experts of 64 = the dense 256-wide FFN), balanced by the bias update.
# The key gives each model's total and activated parameter counts. Each curve
# is the mean over the seeds (1, 2, 3) of the held-out loss, the error bars
# one sample standard deviation over the seeds; the MoE curves are shifted
# right by 1.5 and 3 steps so the bars do not hide each other.
#
# input: runs/ch05/curves.csv
# input: runs/ch05/params.csv
# made-by: make ch5
#
# curves.csv columns (scripts/ch05-runs.sh): step,dense_mean,dense_sd,
# moe-free_mean,moe-free_sd,moe-aux_mean,moe-aux_sd,moe-none_mean,moe-none_sd.
# params.csv: config,file,total_params,active_params,embedding_params
# (row 2 ch05-dense, row 3 ch05-moe).

set datafile separator comma
set datafile missing "nan"
field(row, col) = system(sprintf("awk -F, 'NR==%d {print $%d}' runs/ch05/params.csv", row, col))
label(row, name) = sprintf("%s: %.0fK total, %.0fK active", name, real(field(row, 3)) / 1000, real(field(row, 4)) / 1000)
set title "Dense vs DeepSeekMoE at matched activated parameters (chapter 5): mean +- sd over 3 seeds, from step 60"
set xlabel "step (16 x 64 tokens)"
set ylabel "held-out cross-entropy (nats per token)"
# The first steps, where every run falls from 5.6 nats alike, are left out.
set xrange [60:*]
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
c = "runs/ch05/curves.csv"
plot c skip 1 using 1:2:3 with yerrorlines pt 7 ps 0.7 lw 2 lc rgb "#636363" title label(2, "dense"), \
     c skip 1 using ($1 + 1.5):4:5 with yerrorlines pt 5 ps 0.7 lw 2 lc rgb "#d95f02" title label(3, "MoE, bias balancing"), \
     c skip 1 using ($1 + 3):6:7 with yerrorlines pt 9 ps 0.6 lw 1 dt 2 lc rgb "#7570b3" title "MoE, auxiliary loss instead of the bias"

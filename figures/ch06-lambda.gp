# Chapter 6: what the weight λ of the MTP loss does, mean ± sd over the seeds:
# the main head's held-out loss (left axis; λ = 0 is the model without a
# module) and the draft acceptance rate of self-speculative decoding (right axis).
#
# input: runs/ch06/results.csv
# made-by: make ch6
#
# results.csv columns: run,lambda,seeds,val_loss_mean,val_loss_sd,accuracy_mean,
# accuracy_sd,acceptance_mean,acceptance_sd,... (one row per configuration).

set datafile separator comma
set title "The MTP loss weight λ: main-head loss and draft acceptance (chapter 6), mean ± sd of 3 seeds"
set xlabel "λ (0 = no MTP module)"
set ylabel "held-out cross-entropy of the main head (nats per token)"
set y2label "draft acceptance rate"
set y2tics nomirror
set ytics nomirror
set xtics (0, 0.1, 0.3, 1.0)
set xrange [-0.05:1.05]
set y2range [0:1]
set grid ytics lc rgb "#dddddd"
set key bottom right
set border 11
plot "runs/ch06/results.csv" skip 1 using 2:4:5 with yerrorlines pt 7 ps 0.9 lw 2 lc rgb "#636363" title "held-out loss (left)", \
     "" skip 1 using ($2 > 0 ? $2 : NaN):8:9 axes x1y2 with yerrorlines pt 5 ps 0.9 lw 2 lc rgb "#d95f02" title "acceptance (right)"

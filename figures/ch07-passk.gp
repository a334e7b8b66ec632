# Chapter 7: pass@k against k (unbiased estimator, mean ± sd over 3 seeds) of
# the base model (R1-Zero prompt), the cold-start SFT model and the model
# after one round of rejection sampling + SFT (r1 template), on the test set.
#
# input: runs/ch07/passk.csv
# made-by: make ch7
#
# passk.csv columns: k, base_mean, base_sd, sft_mean, sft_sd, rs_mean, rs_sd

set datafile separator comma
set title "Chapter 7: pass\\@k on the held-out test set (mean ± sd, 3 seeds)"
set xlabel "k (samples per problem)"
set ylabel "pass\\@k"
set logscale x 2
set yrange [0:*]
set grid ytics lc rgb "#dddddd"
set key top left
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch07/passk.csv" skip 1 using 1:2:3 with yerrorlines pt 7 lw 2 lc rgb "#969696" title "base (R1-Zero prompt)", \
     "runs/ch07/passk.csv" skip 1 using 1:4:5 with yerrorlines pt 5 lw 2 lc rgb "#08519c" title "cold-start SFT", \
     "runs/ch07/passk.csv" skip 1 using 1:6:7 with yerrorlines pt 9 lw 2 lc rgb "#e6550d" title "rejection sampling + SFT"

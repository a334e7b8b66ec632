# Chapter 8: pass@k against k (unbiased estimator, mean ± sd over 3 seeds) on
# the held-out test set, before RL (the cold-start SFT model) and after each
# arm trained from it.
#
# input: runs/ch08/passk.csv
# made-by: make ch8
#
# passk.csv columns: k, then mean and sd for base (2,3), zero (4,5), baseq (6,7), zeroq (8,9),
# sft (10,11), sftmore (12,13), rft (14,15), ppo (16,17), grpo (18,19)

set datafile separator comma
set title "Chapter 8: pass\\@k before and after RL (mean ± sd, 3 seeds)"
set xlabel "k (samples per problem)"
set ylabel "pass\\@k"
set logscale x 2
set grid ytics lc rgb "#dddddd"
set key bottom right
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch08/passk.csv" skip 1 using 1:10:11 with yerrorlines pt 7 lw 2 lc rgb "#969696" title "cold-start SFT (before)", \
     "runs/ch08/passk.csv" skip 1 using 1:12:13 with yerrorlines pt 4 lw 2 lc rgb "#756bb1" title "more SFT", \
     "runs/ch08/passk.csv" skip 1 using 1:14:15 with yerrorlines pt 5 lw 2 lc rgb "#e6550d" title "online RFT", \
     "runs/ch08/passk.csv" skip 1 using 1:16:17 with yerrorlines pt 9 lw 2 lc rgb "#31a354" title "PPO", \
     "runs/ch08/passk.csv" skip 1 using 1:18:19 with yerrorlines pt 11 lw 2 lc rgb "#08519c" title "GRPO", \
     "runs/ch08/passk.csv" skip 1 using 1:6:7 with yerrorlines pt 6 lw 1 dt 2 lc rgb "#bdbdbd" title "base, question (before)", \
     "runs/ch08/passk.csv" skip 1 using 1:8:9 with yerrorlines pt 6 lw 1 lc rgb "#636363" title "R1-Zero, question (after)"

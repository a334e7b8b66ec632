# Chapter 9: pass@k against k (unbiased estimator, mean ± sd over 3 seeds) on
# the held-out test set, for the teacher and the student trained four ways.
#
# input: runs/ch09/passk.csv
# made-by: make ch9
#
# passk.csv columns: k, then mean and sd for teacher (2,3), sft (4,5),
# grpo (6,7), grpo3 (8,9), seqkd (10,11), logitkd (12,13), logitkd_t2 (14,15)

set datafile separator comma
set title "Chapter 9: pass\\@k of the teacher and the student (mean ± sd, 3 seeds)"
set xlabel "k (samples per problem)"
set ylabel "pass\\@k"
set logscale x 2
set grid ytics lc rgb "#dddddd"
set key bottom right
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch09/passk.csv" skip 1 using 1:2:3 with yerrorlines pt 7 lw 2 dt 2 lc rgb "#636363" title "teacher", \
     "runs/ch09/passk.csv" skip 1 using 1:4:5 with yerrorlines pt 4 lw 2 lc rgb "#969696" title "student: SFT", \
     "runs/ch09/passk.csv" skip 1 using 1:6:7 with yerrorlines pt 5 lw 2 lc rgb "#e6550d" title "student: SFT + GRPO", \
     "runs/ch09/passk.csv" skip 1 using 1:10:11 with yerrorlines pt 9 lw 2 lc rgb "#08519c" title "student: sequence KD", \
     "runs/ch09/passk.csv" skip 1 using 1:12:13 with yerrorlines pt 11 lw 2 lc rgb "#31a354" title "student: logit KD (T = 1)"

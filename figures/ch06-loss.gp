# Chapter 6: held-out cross-entropy of the MAIN head (the next token), mean
# over the seeds, for chapter 5's MoE model without an MTP module (base) and
# with one module trained at three weights λ of its loss.
#
# input: runs/ch06/curves.csv
# made-by: make ch6
#
# curves.csv columns: step, then one per configuration (base, mtp-0.1, mtp-0.3,
# mtp-1.0), each the mean over seeds of the held-out loss at that step.

set datafile separator comma
set title "Next-token held-out loss with and without an MTP module (chapter 6), mean of 3 seeds, from step 100"
set xlabel "step (16 x 64 tokens)"
set ylabel "held-out cross-entropy of the main head (nats per token)"
# The first steps, where every run falls from 5.6 nats alike, are left out.
set xrange [100:*]
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch06/curves.csv" skip 1 using 1:2 with linespoints pt 7 ps 0.7 lw 2 lc rgb "#636363" title "no MTP module", \
     "" skip 1 using 1:3 with linespoints pt 5 ps 0.6 lw 1 lc rgb "#66a61e" title "MTP, λ = 0.1", \
     "" skip 1 using 1:4 with linespoints pt 9 ps 0.7 lw 2 lc rgb "#d95f02" title "MTP, λ = 0.3", \
     "" skip 1 using 1:5 with linespoints pt 11 ps 0.6 lw 1 dt 2 lc rgb "#7570b3" title "MTP, λ = 1.0"

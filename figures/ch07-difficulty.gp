# Chapter 7: sampled pass\\@1 by difficulty (mean ± sd over 3 seeds) of the base
# model (R1-Zero prompt), the cold-start SFT model and the rejection-sampled
# SFT model.
#
# input: runs/ch07/by_difficulty.csv
# made-by: make ch7
#
# by_difficulty.csv columns: difficulty, then for base, sft, rs:
# pass1_mean, pass1_sd, format_rate_mean, format_rate_sd

set datafile separator comma
set title "Chapter 7: sampled pass\\@1 by difficulty (mean ± sd, 3 seeds)"
set xlabel "difficulty"
set ylabel "pass\\@1"
set yrange [0:*]
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch07/by_difficulty.csv" skip 1 using 2:3:xtic(1) lc rgb "#969696" title "base (R1-Zero prompt)", \
     "" skip 1 using 6:7 lc rgb "#08519c" title "cold-start SFT", \
     "" skip 1 using 10:11 lc rgb "#e6550d" title "rejection sampling + SFT"

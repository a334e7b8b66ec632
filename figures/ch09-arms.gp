# Chapter 9: sampled pass@1 (mean ± sd over 3 seeds) of the teacher and of the
# student trained four ways at the same optimizer steps: cold-start SFT without
# a teacher, that SFT followed by GRPO (on all RL prompts, and on chapter 8's
# difficulty-3 prompts), SFT on the teacher's rejection-filtered samples
# (sequence-level KD, R1's way), and logit-level KD on the cold-start pairs at
# T = 1 and T = 2; over all test problems and by difficulty.
#
# input: runs/ch09/arms.csv
# made-by: make ch9
#
# arms.csv columns: model, short, then sampled pass@1 mean and sd over all
# problems (3,4), difficulty 2 (5,6), difficulty 3 (7,8)

set datafile separator comma
set title "Chapter 9: the student with and without a teacher (sampled pass\\@1, mean ± sd, 3 seeds)"
set xtics font ",9"
set style data histogram
set style histogram errorbars gap 1.5 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "sampled pass\\@1"
set yrange [0:1.05]
set grid ytics lc rgb "#dddddd"
set key outside top center horizontal
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch09/arms.csv" skip 1 using 3:4:xtic(2) lc rgb "#636363" title "all problems", \
     "" skip 1 using 5:6 lc rgb "#9ecae1" title "difficulty 2", \
     "" skip 1 using 7:8 lc rgb "#08519c" title "difficulty 3"

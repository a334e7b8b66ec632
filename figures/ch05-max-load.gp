# Chapter 5 (b): the most loaded expert over training, for the same MoE model
# balanced three ways. A load is the tokens a step's batch sends to an expert
# divided by the mean over the layer's experts; the curve is the largest over
# all experts of all MoE layers. 1 is perfect balance; E/K = 16/3 means some
# layer sends every token to the same 3 experts (routing collapse). Seed 1 of
# the three (results/ch05/per_seed.csv has every seed's load statistics).
#
# input: runs/ch05/moe-none-s1/expert_load.csv
# input: runs/ch05/moe-aux-s1/expert_load.csv
# input: runs/ch05/moe-free-s1/expert_load.csv
# made-by: make ch5
#
# expert_load.csv columns: step,max_load,min_load,l<layer>_e<expert>...

set datafile separator comma
set title "Routing balance: largest expert load / mean load, every step (chapter 5, seed 1)"
set xlabel "step"
set ylabel "max load / mean load"
set yrange [0:7]
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
collapse = 16.0 / 3
plot "runs/ch05/moe-none-s1/expert_load.csv" skip 1 using 1:2 with lines lw 1.5 lc rgb "#b2182b" title "no balancing", \
     "runs/ch05/moe-aux-s1/expert_load.csv" skip 1 using 1:2 with lines lw 1.5 lc rgb "#7570b3" title "auxiliary loss (alpha 0.01)", \
     "runs/ch05/moe-free-s1/expert_load.csv" skip 1 using 1:2 with lines lw 1.5 lc rgb "#d95f02" title "bias update (gamma 0.01), DeepSeek-V3", \
     1 with lines dt 2 lc rgb "#636363" title "balanced", \
     collapse with lines dt 3 lc rgb "#000000" title "collapse (E/K)"

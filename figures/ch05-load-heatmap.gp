# Chapter 5 (b): every expert's load at every step, for the same MoE model
# balanced three ways (one panel each). Rows are the 16 experts of each MoE
# layer (layer 1 at the bottom), columns the training steps; a load is the
# tokens the step's batch sent to the expert divided by the mean (white = 1,
# balanced; black = 0, a dead expert; red = overloaded, up to E/K = 16/3, the
# expert takes every token of its layer). Seed 1 of the three (the others
# show the same pattern; their numbers are in results/ch05/per_seed.csv).
#
# input: runs/ch05/moe-none-s1/load_matrix.csv
# input: runs/ch05/moe-aux-s1/load_matrix.csv
# input: runs/ch05/moe-free-s1/load_matrix.csv
# input: configs/ch05-moe.json
# made-by: make ch5
#
# load_matrix.csv: the l<layer>_e<expert> columns of expert_load.csv (a header
# row, then one row per step), written by scripts/ch05-runs.sh.

set datafile separator comma
cfg(field) = int(system(sprintf("sed -n 's/.*\"%s\": *\\([0-9]*\\).*/\\1/p' configs/ch05-moe.json", field)))
E = cfg("n_routed_experts")
first = cfg("first_k_dense_replace")
ncols = int(system("head -1 runs/ch05/moe-none-s1/load_matrix.csv | tr ',' '\\n' | wc -l"))
layers = ncols / E
steps = int(system("wc -l < runs/ch05/moe-none-s1/load_matrix.csv")) - 1
set multiplot layout 3,1 title "Expert load over training: tokens / mean tokens (chapter 5, seed 1)" \
    margins 0.1,0.86,0.09,0.9 spacing 0,0.07
set palette defined (0 "#000000", 1 "#ffffff", 2.5 "#fdae61", 5.333 "#b2182b")
set cbrange [0:16.0/3]
set xrange [0.5:steps + 0.5]
set yrange [-0.5:ncols - 0.5]
set ytics () font ",8" scale 0
do for [l = 0:layers - 1] { set ytics add (sprintf("layer %d", first + l) l * E + E / 2.0 - 0.5) }
set xtics nomirror font ",8"
set cbtics font ",8"
unset key
array titles[3] = ["no balancing", "auxiliary loss (alpha 0.01)", "bias update (gamma 0.01), as DeepSeek-V3"]
files = "moe-none moe-aux moe-free"
do for [i = 1:3] {
    set label 1 titles[i] at graph 0.01, graph 1.08 left font ",10"
    if (i == 3) { set xlabel "step" offset 0,0.5 }
    plot sprintf("runs/ch05/%s-s1/load_matrix.csv", word(files, i)) matrix skip 1 using ($2 + 1):1:3 with image
}
unset multiplot

# Chapter 1: how often the pair merged at each BPE step occurred in the
# training text. The first merges join very frequent pairs (digits with
# separators, common words of the prompts); the counts fall quickly, which is
# why a small vocabulary already shortens the text a lot.
#
# input: runs/ch01/merges.csv
# made-by: make ch1
#
# runs/ch01/merges.csv is written by
#   tinyseek tokenizer train ... --log runs/ch01/merges.csv
# columns: merge,left,right,count,token_id,token (one header row).
# scripts/figures.sh sets the terminal and output (PNG and SVG).

set datafile separator comma
set title "Byte-level BPE on the toy arithmetic corpus (chapter 1)"
set xlabel "merge index"
set ylabel "occurrences of the merged pair"
set logscale y
set format y "10^{%T}"
set grid xtics ytics mytics lc rgb "#dddddd"
set key off
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch01/merges.csv" skip 1 using 1:4 with linespoints pt 7 ps 0.5 lw 1.5 lc rgb "#1f77b4"

# Chapter 1: how often the pair merged at each BPE step occurred in the
# training text, with the token each merge made (every third of the first 48
# is labelled; Ġ is a space in the byte-level spelling of tokenizer.json).
# Merges are learned most frequent first, so the counts only fall. Digits
# never merge (each is its own pre-tokenizer chunk), so the merges build the
# few words of the pretraining text, and the corpus runs out of pairs before
# a vocabulary of 512.
#
# input: runs/ch01/merges.csv
# made-by: make ch1
#
# runs/ch01/merges.csv is written by
#   tinyseek tokenizer train ... --log runs/ch01/merges.csv
# columns: merge,left,right,count,token_id,token (one header row).
# scripts/figures.sh sets the terminal and output (PNG and SVG).

set datafile separator comma
set title "Byte-level BPE on the toy world's pretraining text (chapter 1)"
set xlabel "merge (in the order learned)"
set ylabel "occurrences of the merged pair"
set yrange [0:*]
set offsets 0, 1, 0, 0
set xrange [-0.5:*]
set grid ytics lc rgb "#dddddd"
set key off
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch01/merges.csv" skip 1 using 1:4 with linespoints pt 7 ps 0.6 lw 1.5 lc rgb "#1f77b4", \
     "" skip 1 every 3::0::47 using 1:4:(stringcolumn(6)) with labels left rotate by 45 offset 0.3,0.6 font ",9" tc rgb "#333333"

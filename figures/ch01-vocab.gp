# Chapter 1: tokens per held-out line of pretraining text (one problem each,
# in one of the plain forms) as the BPE vocabulary grows, from
# bytes only (256 + 9 special tokens, no merge) to every merge the corpus
# offers. Digits are always single tokens, so only the words and separators
# around them can shrink.
#
# input: runs/ch01/vocab-sweep.csv
# made-by: make ch1
#
# runs/ch01/vocab-sweep.csv is written by scripts/ch01-vocab-sweep.sh, which
# trains one tokenizer per size with `tinyseek tokenizer train` and counts the
# ids `tinyseek tokenizer encode` gives for data/pretrain_test.txt.
# columns: vocab_size,merges,tokens,problems,tokens_per_problem,bytes_per_token
# scripts/figures.sh sets the terminal and output (PNG and SVG).

set datafile separator comma
set title "Shorter sequences from a bigger vocabulary (chapter 1)"
set xlabel "vocabulary size (256 bytes + merges + 9 special tokens)"
set ylabel "tokens per line of held-out text"
set y2label "bytes per token"
set ytics nomirror
set y2tics
set grid xtics ytics lc rgb "#dddddd"
set key center right
set border 11
set xtics nomirror
plot "runs/ch01/vocab-sweep.csv" skip 1 using 1:5 with linespoints pt 7 ps 0.7 lw 1.5 lc rgb "#1f77b4" title "tokens per line", \
     "" skip 1 using 1:6 axes x1y2 with linespoints pt 5 ps 0.6 lw 1.5 lc rgb "#d62728" dt 2 title "bytes per token"

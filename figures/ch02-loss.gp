# Chapter 2: training loss (every step) and held-out loss (every 50 steps)
# of the dense baseline on the toy arithmetic data, with the unigram entropy
# of the training text as a reference line: a model that ignores context can
# do no better than that line.
#
# input: runs/ch02/model/metrics.csv
# input: runs/ch02/unigram.txt
# made-by: make ch2
#
# metrics.csv columns: step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s
# (val_loss is "nan" on steps without an evaluation). unigram.txt holds one
# number, written by make ch2 from `tinyseek pretrain`'s first line.

set datafile separator comma
set datafile missing "nan"
unigram = real(system("cat runs/ch02/unigram.txt"))
set title "Dense baseline (chapter 2): loss on the toy arithmetic data"
set xlabel "step"
set ylabel "cross-entropy (nats per token)"
set logscale y
set grid ytics mytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch02/model/metrics.csv" skip 1 using 1:2 with lines lw 1.2 lc rgb "#9ecae1" title "training (one batch)", \
     "" skip 1 using 1:3 with linespoints pt 7 ps 0.8 lw 2 lc rgb "#08519c" title "held-out (test split)", \
     unigram with lines dt 2 lw 1.5 lc rgb "#d62728" title sprintf("unigram entropy %.2f", unigram)

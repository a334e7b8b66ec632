# make pipeline (chapter 10): every stage of the R1 recipe in miniature, scored
# on the same test problems: sampled pass@1 (T = 0.6) at difficulty 2 and 3 with
# its spread over the seeds (top), and the format rate (bottom). The two
# pretrained models are asked with the bare question, the others with the r1 template.
#
# input: runs/pipeline/figure.csv
# made-by: make pipeline
#
# figure.csv columns: stage, short label (2), then mean and sd of: pass@1 all (3,4),
# format all (5,6), pass@1 difficulty 2 (7,8), format 2 (9,10), pass@1 difficulty 3 (11,12),
# format 3 (13,14)

set datafile separator comma
set multiplot layout 2,1 title "The R1 pipeline in miniature: every stage on the same test set"
set style data histogram
set style histogram errorbars gap 1.5 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set border 3
set xtics nomirror scale 0 font ",10"
set ytics nomirror
set yrange [0:1.18]
set ytics 0,0.2,1
set key top center horizontal font ",10"
set ylabel "sampled pass\\@1"
plot "runs/pipeline/figure.csv" skip 1 using 7:8:xtic(2) lc rgb "#6baed6" title "difficulty 2", \
     "" skip 1 using 11:12 lc rgb "#08519c" title "difficulty 3"
set ylabel "format rate"
set style histogram errorbars gap 3 lw 1
unset key
plot "runs/pipeline/figure.csv" skip 1 using 5:6:xtic(2) lc rgb "#31a354" title "format rate"
unset multiplot

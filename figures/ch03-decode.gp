# Chapter 3: KV-cache decode speed against context length, for a batch of 4
# sequences on one thread (`tinyseek bench-decode`): each point is the median
# step time over a window of 32 decode steps, as tokens/s. The machine may be
# shared, so the curves are noisy; their order and slope are the result.
#
# input: runs/ch03/mha/decode.csv
# input: runs/ch03/gqa-kv4/decode.csv
# input: runs/ch03/gqa-kv2/decode.csv
# input: runs/ch03/mqa/decode.csv
# made-by: make ch3
#
# decode.csv columns: context,ms_per_step,tokens_per_s,kv_bytes_per_token,kv_bytes_in_use

set datafile separator comma
set title "Decode speed as the context grows (chapter 3): batch of 4, one thread"
set xlabel "context (tokens already cached)"
set ylabel "decoded tokens/s"
set logscale x 2
set xrange [64:1024]
set yrange [0:*]
set grid xtics ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
plot "runs/ch03/mha/decode.csv" skip 1 using 1:3 with linespoints pt 7 ps 0.5 lw 2 lc rgb "#08519c" title "MHA (8 kv heads)", \
     "runs/ch03/gqa-kv4/decode.csv" skip 1 using 1:3 with linespoints pt 5 ps 0.5 lw 2 lc rgb "#31a354" title "GQA (4 kv heads)", \
     "runs/ch03/gqa-kv2/decode.csv" skip 1 using 1:3 with linespoints pt 9 ps 0.6 lw 2 lc rgb "#fd8d3c" title "GQA (2 kv heads)", \
     "runs/ch03/mqa/decode.csv" skip 1 using 1:3 with linespoints pt 11 ps 0.6 lw 2 lc rgb "#d62728" title "MQA (1 kv head)"

# Chapter 4: decode speed against context length (4 sequences decoded
# together, one thread, median step time per window of 64 steps) for the
# trained models of make ch4, MLA with both caches: naive (full per-head keys
# and values) and absorbed (the latent only). The key gives the KV cache each
# allocates per token.
#
# input: runs/ch04/decode-mha.csv
# input: runs/ch04/decode-gqa4.csv
# input: runs/ch04/decode-gqa2.csv
# input: runs/ch04/decode-mqa.csv
# input: runs/ch04/decode-mla-naive.csv
# input: runs/ch04/decode-mla-absorbed.csv
# made-by: make ch4
#
# decode-*.csv columns (tinyseek bench-decode): context,ms_per_step,
# tokens_per_s,kv_bytes_per_token,kv_bytes_in_use

set datafile separator comma
bytes(name) = system(sprintf("awk -F, 'NR==2 {print $4}' runs/ch04/decode-%s.csv", name))
label(name, title) = sprintf("%s (%s B/token)", title, bytes(name))
set title "Decode speed as the context grows (chapter 4)"
set xlabel "context (tokens already cached)"
set ylabel "tokens per second (4 sequences, 1 thread)"
set grid ytics lc rgb "#dddddd"
set key top right
set border 3
set xtics nomirror
set ytics nomirror
set yrange [0:*]
plot "runs/ch04/decode-mha.csv" skip 1 using 1:3 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#636363" title label("mha", "MHA"), \
     "runs/ch04/decode-gqa4.csv" skip 1 using 1:3 with linespoints pt 5 ps 0.6 lw 2 lc rgb "#1b9e77" title label("gqa4", "GQA, 4 kv heads"), \
     "runs/ch04/decode-gqa2.csv" skip 1 using 1:3 with linespoints pt 4 ps 0.6 lw 1.5 dt 2 lc rgb "#1b9e77" title label("gqa2", "GQA, 2 kv heads"), \
     "runs/ch04/decode-mqa.csv" skip 1 using 1:3 with linespoints pt 9 ps 0.6 lw 2 lc rgb "#7570b3" title label("mqa", "MQA"), \
     "runs/ch04/decode-mla-naive.csv" skip 1 using 1:3 with linespoints pt 12 ps 0.7 lw 2 dt 2 lc rgb "#d95f02" title label("mla-naive", "MLA naive"), \
     "runs/ch04/decode-mla-absorbed.csv" skip 1 using 1:3 with linespoints pt 13 ps 0.8 lw 2 lc rgb "#d95f02" title label("mla-absorbed", "MLA absorbed")

# Chapter 4: context extension. The MLA model of make ch4, trained on windows
# of 64 tokens, evaluated on longer held-out windows with its plain RoPE
# frequencies, with YaRN at factor s = context/64 as DeepSeek-V3 configures it
# (beta_fast 32, beta_slow 1, mscale = mscale_all_dim = 1: interpolated
# frequencies and a sharper softmax), and with the ramp's ends moved for a
# 64-token context (beta_fast 1, beta_slow 0.1). No fine-tuning after the switch.
#
# input: runs/ch04/yarn.csv
# made-by: make ch4
#
# yarn.csv columns (tinyseek eval --csv): label,seq,yarn_factor,loss

set datafile separator comma
rows(name) = sprintf("< awk -F, '$1 == \"%s\"' runs/ch04/yarn.csv", name)
set title "Held-out loss beyond the training context (MLA, trained at 64 tokens)"
set xlabel "evaluation context (tokens)"
set ylabel "held-out cross-entropy (nats per token)"
set logscale x 2
set xtics (64, 128, 256, 512, 1024)
set grid ytics lc rgb "#dddddd"
set key top left
set border 3
set xtics nomirror
set ytics nomirror
set arrow from 64, graph 0 to 64, graph 1 nohead dt 3 lc rgb "#999999"
plot rows("rope") using 2:4 with linespoints pt 7 lw 2 lc rgb "#636363" title "RoPE as trained", \
     rows("yarn") using 2:4 with linespoints pt 13 ps 1.1 lw 2 lc rgb "#d95f02" title "YaRN, s = context/64, DeepSeek-V3's betas 32/1", \
     rows("yarn-short") using 2:4 with linespoints pt 12 lw 1.5 dt 2 lc rgb "#d95f02" title "YaRN, s = context/64, betas 1/0.1 (for a 64-token context)"

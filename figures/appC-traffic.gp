# Appendix C: bytes the forward dispatch of one MoE step sends between nodes
# (all MoE layers, all ranks), chapter 5's model, 16 x 64 tokens per step, for
# three layouts of ranks into nodes. "One row per (token, expert)" is what
# tinyseek-mpi's MPI_Alltoallv sends (measured); "one row per (token, node)" is
# what a dispatch that sends each token once to every node holding one of its
# experts would send (V3's, counted from the same routing). Node-limited
# routing (each token to at most M nodes) only pays off in the second.
#
# input: runs/appC/traffic.csv
# made-by: make appC
#
# traffic.csv columns: topology,per_pair_free_kb,per_pair_limited_kb,per_node_free_kb,per_node_limited_kb

set datafile separator comma
set title "Expert-parallel dispatch between nodes per step (appendix C)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set border 3
set xtics nomirror
set ytics nomirror
set key top left Left reverse samplen 2
set ylabel "kB per step between nodes"
set yrange [0:2600]
plot "runs/appC/traffic.csv" skip 1 using 2:xtic(1) lc rgb "#bdbdbd" title "one row per (token, expert), any nodes", \
     "" skip 1 using 3 lc rgb "#636363" title "one row per (token, expert), node-limited", \
     "" skip 1 using 4 lc rgb "#fdae6b" title "one row per (token, node), any nodes", \
     "" skip 1 using 5 lc rgb "#d95f02" title "one row per (token, node), node-limited"

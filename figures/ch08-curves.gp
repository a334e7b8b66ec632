# Chapter 8: what the policy does during RL, mean over 3 seeds: the accuracy of
# each step's rollouts (the fraction of sampled completions with the right
# answer), their format rate and their mean length in tokens, for GRPO, the
# online RFT and PPO baselines (all from the cold-start SFT model) and R1-Zero
# (GRPO from the base model, asked as its pretraining text asks).
#
# input: runs/ch08/curves.csv
# made-by: make ch8
#
# curves.csv columns: step, then for zero, zeroq, rft, ppo, grpo: reward,
# accuracy, format_rate, completion_len, kl (mean, sd each): zero 2-11,
# zeroq 12-21, rft 22-31, ppo 32-41, grpo 42-51

set datafile separator comma
set datafile missing ""
set multiplot layout 1,3 title "Chapter 8: rollouts during RL (mean of 3 seeds)"
set xlabel "optimizer step"
set xtics 25
set key font ",9" spacing 0.9
set grid ytics lc rgb "#dddddd"
set border 3
set xtics nomirror
set ytics nomirror
set key bottom right
set ylabel "rollout accuracy"
set yrange [0:1]
plot "runs/ch08/curves.csv" skip 1 using 1:44 with lines lw 2 lc rgb "#08519c" title "GRPO (R1)", \
     "runs/ch08/curves.csv" skip 1 using 1:24 with lines lw 2 lc rgb "#e6550d" title "online RFT", \
     "runs/ch08/curves.csv" skip 1 using 1:34 with lines lw 2 lc rgb "#31a354" title "PPO", \
     "runs/ch08/curves.csv" skip 1 using 1:14 with lines lw 2 lc rgb "#969696" title "R1-Zero (question)"
set ylabel "rollout format rate"
set key center right
plot "runs/ch08/curves.csv" skip 1 using 1:16 with lines lw 2 lc rgb "#969696" title "R1-Zero (question)", \
     "runs/ch08/curves.csv" skip 1 using 1:6 with lines lw 2 dt 2 lc rgb "#636363" title "R1-Zero (paper's prompt)", \
     "runs/ch08/curves.csv" skip 1 using 1:46 with lines lw 2 lc rgb "#08519c" title "GRPO (R1)"
set ylabel "completion length (tokens)"
set yrange [0:*]
set key top right
plot "runs/ch08/curves.csv" skip 1 using 1:48 with lines lw 2 lc rgb "#08519c" title "GRPO (R1)", \
     "runs/ch08/curves.csv" skip 1 using 1:28 with lines lw 2 lc rgb "#e6550d" title "online RFT", \
     "runs/ch08/curves.csv" skip 1 using 1:38 with lines lw 2 lc rgb "#31a354" title "PPO", \
     "runs/ch08/curves.csv" skip 1 using 1:18 with lines lw 2 lc rgb "#969696" title "R1-Zero (question)"
unset multiplot

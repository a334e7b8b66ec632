# Exercise: grpo_coefficients (chapter 8). Read by mk/teaching.mk.
EX_SOURCE   := src/train/grpo.c
EX_FUNCTION := ts_grpo_coefficients
# Stage by stage on one group (the advantages, the ratio and the clip's side,
# the KL term, masked positions and PPO's per-token advantages, the
# coefficient against finite differences of J), then the chapter suite: the
# whole loss and its gradient through a model, the normalisations, equal
# rewards, REINFORCE at mu = 1.
EX_TESTS    := test_grpo_coefficients test_ch08_grpo
EX_CHAPTER  := 8

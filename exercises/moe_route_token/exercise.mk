# Exercise: moe_route_token (chapter 5). Read by mk/teaching.mk.
EX_SOURCE   := src/model/moe.c
EX_FUNCTION := moe_route_token
# The chapter's suite: one expert = the dense MLP, the whole-model gradient
# checks, the bias that picks but never weighs, group-limited routing, balancing.
EX_TESTS    := test_ch05_moe
EX_CHAPTER  := 5

# Exercise: mla_absorbed_attention (chapter 4). Read by mk/teaching.mk.
EX_SOURCE   := src/model/mla.c
EX_FUNCTION := mla_absorbed_attention
# Absorbed decode against the naive training forward (quick), then the chapter suite.
EX_TESTS    := test_mla_absorbed_attention test_ch04_mla
EX_CHAPTER  := 4

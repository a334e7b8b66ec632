# Exercise: gqa_attention_backward (chapter 3). Read by mk/teaching.mk.
EX_SOURCE   := src/core/gqa_attention.c
EX_FUNCTION := gqa_attention_backward
# The chapter's suite: finite differences of the core attention with shared K/V,
# fast against reference loops, the same bits as MHA for Hkv = H and for any
# thread count, and the whole-model checks of GQA and MQA.
EX_TESTS    := test_ch03_gqa
EX_CHAPTER  := 3

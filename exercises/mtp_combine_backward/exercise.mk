# Exercise: mtp_combine_backward (chapter 6). Read by mk/teaching.mk.
EX_SOURCE   := src/model/mtp.c
EX_FUNCTION := mtp_combine_backward
# Finite differences of the module's input alone (quick), then the chapter suite:
# the whole-model gradient checks with one and two MTP modules run through it.
EX_TESTS    := test_mtp_combine_backward test_ch06_mtp
EX_CHAPTER  := 6

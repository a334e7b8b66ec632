# Exercise: pass_at_k (chapter 7). Read by mk/teaching.mk.
EX_SOURCE   := src/data/answer.c
EX_FUNCTION := ts_pass_at_k
# The chapter's suite: pass@k against an enumeration of every k-subset, and the
# evaluation harness's summary (pass@1 = mean c/n, pass@k growing with k).
EX_TESTS    := test_ch07_sft
EX_CHAPTER  := 7

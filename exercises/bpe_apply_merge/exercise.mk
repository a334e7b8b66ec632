# Exercise: bpe_apply_merge (chapter 1). Read by mk/teaching.mk.
# The function the student writes, and the source file whose copy it replaces:
EX_SOURCE   := src/data/bpe.c
EX_FUNCTION := bpe_apply_merge
# Suites that check it: test_*.c files of this folder, then tests/ suites by name.
EX_TESTS    := test_bpe_apply_merge test_ch01_bpe
EX_CHAPTER  := 1

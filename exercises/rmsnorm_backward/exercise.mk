# Exercise: rmsnorm_backward (chapter 2). Read by mk/teaching.mk.
EX_SOURCE   := src/core/ops.c
EX_FUNCTION := rmsnorm_backward
# The op's own finite-difference checks, then the whole-model gradient check.
EX_TESTS    := test_ch02_ops test_ch02_model
EX_CHAPTER  := 2

# Exercise: kd_loss_backward (chapter 9). Read by mk/teaching.mk.
EX_SOURCE   := src/train/distill.c
EX_FUNCTION := kd_loss_backward
# Stage by stage on one row (soft targets, the KL, its gradient), then the
# chapter suite: the whole loss and its gradient through a student, by finite
# differences, and the command.
EX_TESTS    := test_kd_loss_backward test_ch09_distill
EX_CHAPTER  := 9

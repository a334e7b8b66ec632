/**
 * @file student.c
 * @brief Exercise (chapter 9): write kd_loss_backward(), one row of the
 *        distillation loss's teacher term: the soft targets, the KL, and its
 *        gradient with respect to the student's logits.
 *
 * For one position with V logits (student, teacher) and temperature T:
 *
 *     log_pt[v] = log softmax(teacher/T)[v]      the teacher's soft targets
 *     log_ps[v] = log softmax(student/T)[v]      the student's soft distribution
 *
 * computed in double, stably: subtract the row's largest z/T before exp, so no
 * exp overflows, and keep the log-probabilities themselves (a probability
 * that underflows to 0 still has a finite log). Then
 *
 *     forward KL (reverse = 0):  KL = Σ_v p_t,v · (log p_t,v − log p_s,v)
 *     reverse KL (reverse = 1):  KL = Σ_v p_s,v · (log p_s,v − log p_t,v)
 *
 * Return KL. If d_student is not NULL, ADD (+=) scale · dKL/dstudent into it.
 * Derive the gradient with u = student/T (so d/dstudent = (1/T)·d/du) and
 * d log p_s,v / du_k = δ_vk − p_s,k; src/train/distill.h has the result if you
 * want to check yours.
 *
 *     make exercise EX=kd_loss_backward
 * builds the library with this function in place of the one in
 * src/train/distill.c and runs test_kd_loss_backward (soft targets, then the
 * KL, then the gradient: each failure names the quantity that is wrong), then
 * tests/test_ch09_distill.c (the whole loss, through a student model).
 */
#include <math.h>

#include "train/distill.h"

double kd_loss_backward(float *d_student, double *log_pt, double *log_ps, const float *student, const float *teacher,
                        int V, double temperature, int reverse, double scale) {
    /* TODO: your code here. */
    (void)d_student;
    (void)log_pt;
    (void)log_ps;
    (void)student;
    (void)teacher;
    (void)V;
    (void)temperature;
    (void)reverse;
    (void)scale;
    return 0.0;
}

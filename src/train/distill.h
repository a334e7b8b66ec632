/**
 * @file distill.h
 * @brief Logit-level knowledge distillation (chapter 9; Hinton et al. 2015;
 *        R1 §2.4 distils at the sequence level, which is SFT on a teacher's
 *        samples): a frozen teacher's soft targets teach a student, on the
 *        response tokens of SFT's batches.
 *
 * For each counted position n (target not TS_IGNORE: the response tokens of
 * an SFT batch), with z_s the student's logits, z_t the teacher's, T the
 * temperature and p^T = softmax(z/T):
 *
 *     L = α · (1/N_c) Σ_n −log softmax(z_s,n)[y_n]                 (cross-entropy on the data, T = 1)
 *       + (1 − α) · T² · (1/N_c) Σ_n KL_n                         (the teacher's soft targets)
 *
 *     forward KL (Hinton; mass-covering):  KL_n = Σ_v p_t,v (log p_t,v − log p_s,v)
 *     reverse KL (MiniLLM; mode-seeking):  KL_n = Σ_v p_s,v (log p_s,v − log p_t,v)
 *
 * N_c is the number of counted positions; prompt and padding positions
 * contribute nothing, to the loss or to the gradient.
 *
 * The gradient with respect to the student's logits, per counted row. Write
 * u = z_s/T, so d/dz_s = (1/T)·d/du, and use d log p_s,v / du_k = δ_vk − p_s,k:
 *
 *     forward:  dKL/du_k = −Σ_v p_t,v (δ_vk − p_s,k) = p_s,k − p_t,k
 *     reverse:  dKL/du_k = Σ_v p_s,v (δ_vk − p_s,k)(log p_s,v − log p_t,v + 1)
 *                        = p_s,k (a_k − KL),       a_k = log p_s,k − log p_t,k
 *
 * so dL/dz_s = (α/N_c)(p_s^1 − onehot(y)) + ((1−α)·T²/N_c)·(1/T)·dKL/du. The T²
 * is Hinton's: the soft term's gradient shrinks as 1/T, T² keeps its size
 * comparable to the hard term's as T changes (forward KL: (1−α)·T·(p_s − p_t)/N_c).
 *
 * Both soft distributions are computed as log-softmax in double from the
 * float32 logits (subtract the row's max, then log Σ exp): a probability that
 * underflows to 0 still has a finite log, so p·log p is 0, never 0·(−inf).
 *
 * The teacher is a frozen model (TS_MODEL_FROZEN): weights and a forward,
 * never gradients, AdamW moments or backward scratch. With P its parameter
 * count, that is 12·P bytes of gradients and moments it does not hold, plus
 * the backward's scratch for the batch shape.
 */
#ifndef TS_DISTILL_H
#define TS_DISTILL_H

#include "data/bpe.h"
#include "data/sft_batch.h"
#include "model/model.h"
#include "train/loop.h"

/** The distillation loss's settings; see ts_kd_opts_default(). */
typedef struct {
    float alpha;       /**< weight of the cross-entropy on the data, in [0, 1]; 1 − α weighs the teacher's term */
    float temperature; /**< T > 0 of both soft distributions (1 = the models' own) */
    int reverse;       /**< 0: forward KL(p_teacher^T ‖ p_student^T) (Hinton); 1: reverse KL(p_student^T ‖ p_teacher^T) */
} ts_kd_opts;

/** @brief α 0.5, T 2, forward KL. */
ts_kd_opts ts_kd_opts_default(void);

/** What one ts_kd_loss() computed. */
typedef struct {
    double loss;      /**< α·ce + (1−α)·T²·kl */
    double ce;        /**< mean cross-entropy of the student on the data targets (temperature 1) */
    double kl;        /**< mean KL at temperature T over the counted rows, before T² (the chosen direction) */
    double agree;     /**< counted rows where the student's top token is the teacher's, over the counted rows */
    int n_counted;    /**< rows whose target is not TS_IGNORE */
} ts_kd_result;

// [kd-loss-backward-signature]
/**
 * @brief One row of the teacher's term: the soft targets, the KL, and its
 *        gradient with respect to the student's logits.
 *
 *     log_pt = log softmax(teacher/T)      log_ps = log softmax(student/T)      (V each, double)
 *     forward: KL = Σ_v p_t,v (log p_t,v − log p_s,v)      dKL/dstudent_v = (p_s,v − p_t,v)/T
 *     reverse: KL = Σ_v p_s,v (log p_s,v − log p_t,v)      dKL/dstudent_v = p_s,v·(a_v − KL)/T,
 *                                                          a_v = log p_s,v − log p_t,v
 *
 * @param d_student    (V) if non-NULL: += scale · dKL/dstudent (float, as every gradient)
 * @param log_pt       (V) out: the teacher's soft targets, as log-probabilities
 * @param log_ps       (V) out: the student's soft distribution, as log-probabilities
 * @param student      (V) the student's logits of the row
 * @param teacher      (V) the teacher's logits of the row (finite)
 * @param V            vocabulary size
 * @param temperature  T > 0
 * @param reverse      0: forward KL(p_t ‖ p_s); 1: reverse KL(p_s ‖ p_t)
 * @param scale        the row's weight in the loss: (1 − α)·T²/N_c in ts_kd_loss()
 * @return KL (≥ 0 up to rounding), unscaled
 */
double kd_loss_backward(float *d_student, double *log_pt, double *log_ps, const float *student, const float *teacher,
                        int V, double temperature, int reverse, double scale);
// [kd-loss-backward-signature]

/**
 * @brief The distillation loss of the file comment on N rows and its gradient:
 *        d_logits += dL/dstudent_logits (if non-NULL). With α = 1 it is
 *        ts_loss_crossentropy()'s mean over the counted rows, bit for bit
 *        (loss and gradient); with α = 0 the data targets only choose the rows.
 * @param res             the loss and its parts
 * @param d_logits        (N,V) if non-NULL: += dL/dlogits (0 on rows whose target is TS_IGNORE)
 * @param student_logits  (N,V) the student's logits
 * @param teacher_logits  (N,V) the teacher's logits on the same tokens
 * @param targets         (N) next tokens in 0..V−1, or TS_IGNORE
 * @param o               α, T, direction
 * @param N               rows
 * @param V               vocabulary size (the teacher's and the student's)
 * @return TS_OK; TS_ERR_ARG for α outside [0, 1], T not finite and > 0;
 *         TS_ERR_RANGE for a target outside the vocabulary or a teacher logit
 *         that is not finite on a counted row; TS_ERR_NOMEM. Nothing is written
 *         to d_logits on failure.
 */
ts_status ts_kd_loss(ts_kd_result *res, float *d_logits, const float *student_logits, const float *teacher_logits,
                     const int *targets, const ts_kd_opts *o, int N, int V);

/**
 * @brief One distillation gradient on a batch: the teacher's forward (no
 *        gradient), the student's forward to the logits, ts_kd_loss(), the
 *        student's backward (its MoE balance loss at weight 1, as SFT trains):
 *        student grads += dL/dθ. *loss = L + the student's balance loss.
 *        Replaces both models' activations.
 * @param student  the student (with gradients)
 * @param teacher  the teacher (any mode; only its forward runs)
 * @param b        the batch: tokens, targets with TS_IGNORE on the prompt and padding
 * @param o        the loss's settings
 * @param loss     out: the number the optimizer minimises
 * @param res      out (may be NULL): the loss's parts
 */
ts_status ts_distill_step(ts_model *student, ts_model *teacher, const ts_batch *b, const ts_kd_opts *o, float *loss,
                          ts_kd_result *res);

/**
 * @brief Do two tokenizers give every text the same ids? Same vocabulary
 *        size, the same bytes and special flag for every id, the same merges
 *        in the same order. TS_ERR_FORMAT naming both files and the first
 *        difference otherwise.
 */
ts_status ts_distill_same_tokenizer(const bpe_tokenizer *a, const char *a_name, const bpe_tokenizer *b,
                                    const char *b_name);

/* ---- the trainer (src/train/distill_trainer.c) ------------------------------ */

/** Extra CSV columns of the distillation loss in the training loop, in this order. */
#define TS_KD_N_STATS 4
/** Their CSV names: ce, kl, agree, response_tokens. */
extern const char *const ts_kd_stat_names[TS_KD_N_STATS];

/** The distillation loss's data for the training loop. */
typedef struct {
    ts_kd_opts opts;      /**< settings */
    ts_model *teacher;    /**< the frozen teacher */
    ts_kd_result last;    /**< what the last step computed */
} ts_kd_loss_ctx;

/** @brief The distillation loss as the training loop takes it: ts_distill_step() with ce, kl, agree, response_tokens columns. */
ts_loss ts_distill_loop_loss(ts_kd_loss_ctx *ctx);

/**
 * @brief Distil @p teacher into @p student (created with the optimizer moments,
 *        weights loaded or initialised) on SFT's pairs: batches as ts_sft()
 *        makes them (response-only targets), the loss of ts_distill_step(), the
 *        held-out value the student's response cross-entropy on @p eval (as
 *        SFT's, so the two compare). The run's fingerprint adds α, T, the
 *        direction and a hash of the teacher's weights to the loop's, so a
 *        resume with another teacher or setting is refused.
 * @return TS_ERR_ARG when the two vocabularies differ, the student has no
 *         optimizer state, or a setting is bad; TS_ERR_RANGE for a pair longer
 *         than either model's context or a token outside the vocabulary; what
 *         ts_train() returns.
 */
ts_status ts_distill(ts_model *student, ts_model *teacher, const ts_sft_data *train, const ts_sft_data *eval,
                     int eval_pairs, const ts_kd_opts *kd, const ts_train_opts *opts, ts_train_result *result);

#endif

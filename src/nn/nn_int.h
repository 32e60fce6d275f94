/*
 * Private to src/nn: helpers the kernel files share. Nothing outside src/nn includes this.
 *
 *   window.c      window geometry, resolved windows as patch specs
 *   linear.c      dense, einsum dense, linear, convolutions (forward, depthwise, transposed)
 *   pool.c        max/average pools, global pools
 *   norm.c        layout helpers, batch-norm and Normalization folding, scale/offset on axes
 *   activation.c  the Keras and torch activation maps, the general ReLU
 *   spatial.c     spatial padding, cropping, upsampling, pixel shuffles, embedding, encodings
 *   hgq.c         the HGQ2 quantizer: modes, kif, the symbolic mirror, float32 weight paths
 *
 * Scratch buffers (numbers read out of arrays) come from alk_malloc and are freed before the
 * kernel returns; results live in the trace arena like every array.
 */
#ifndef ALK_NN_NN_INT_H
#define ALK_NN_NN_INT_H

#include "nn/nn.h"

/* The patch spec that gathers exactly the window `g` resolves (window.c). */
void alk__nn_patch_spec(const alk_nn_window *w, const alk_nn_geometry *g, bool transposed,
                        alk_patch_spec *ret_spec);

/* True when no error is recorded; false (nothing recorded) after one. */
static inline bool alk__nn_ok(alk_trace *t) {
    return alk_trace_error(t) == ALK_OK;
}

/* Fails unless `a` is a numeric array; `what` names it ("kernel", "bias"). */
bool alk__nn_require_numeric(alk_trace *t, const alk_fva *a, const char *what);

/* Scratch for n elements of `size` bytes (at least one), zeroed, freed with alk_free; NULL with
 * ENOMEM recorded when the allocation fails (norm.c). */
void *alk__nn_alloc(alk_trace *t, size_t n, size_t size);

/* The first spatial axis and the rank of a (B, *S, C) or (B, C, *S) array; false (EINVAL naming
 * the number of axes) unless it has 1 to 3 spatial axes (spatial.c). */
bool alk__nn_spatial_axes(alk_trace *t, const alk_fva *x, bool channels_first, size_t *ret_first,
                          size_t *ret_rank);

/* A numeric array of `ndim`/`shape` from `n` floats, widened exactly (norm.c). */
alk_fva *alk__nn_from_floats(alk_trace *t, size_t ndim, const size_t *shape, const float *values);

/* The elements of numeric `a` as floats, failing (EINVAL naming `what`) on a value that is not
 * a float32 (weights arrive as widened float32; a double weight would be rounded silently). */
float *alk__nn_read_floats(alk_trace *t, const alk_fva *a, const char *what);

/* scale = gamma / sqrt(var + eps), offset = beta - mean * scale in float32 over n channels; an
 * absent gamma (NULL) is 1, an absent beta beta0; offset (and then mean) may be NULL (norm.c). */
void alk__nn_fold_f32(size_t n, const float *gamma, const float *beta, float beta0,
                      const float *mean, const float *var, float eps, float *scale, float *offset);

/* The batch-norm fold on arrays: reads and checks the vectors (gamma NULL = 1, beta NULL = beta0),
 * folds in float32 and returns numeric arrays shaped like mean (norm.c). */
int alk__nn_fold(alk_trace *t, const alk_fva *gamma, const alk_fva *beta, float beta0,
                 const alk_fva *mean, const alk_fva *var, double eps, alk_fva **ret_scale,
                 alk_fva **ret_offset);

/* Spatial moves: the input viewed channels last (a view; x itself when already so) and the
 * result moved back (linear.c, pool.c and spatial.c use them). */
alk_fva *alk__nn_channels_last(alk_trace *t, const alk_fva *x, bool channels_first);
alk_fva *alk__nn_restore_layout(alk_trace *t, const alk_fva *y, bool channels_first);

#endif

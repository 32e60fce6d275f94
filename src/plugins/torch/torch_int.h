/*
 * The `torch` tracer plugin's private interface: its handler table and the family functions the
 * table's rows share, plus the small readers every family needs.
 *
 * The tracer (tracer.c) replays a torch.fx graph (spec frontends.md §4, docs/protocol.md "Model
 * payloads → torch"): each call_module, call_function and call_method node becomes one call of
 * the handler kit (alk_op.h) whose row is found by (module, name):
 *
 *     call_module   torch.nn.modules.conv.Conv2d  -> ("torch.nn.modules.conv", "Conv2d")
 *     call_function torch.nn.functional.conv2d    -> ("torch.nn.functional", "conv2d")
 *     call_function operator.add                  -> ("operator", "add")
 *     call_method   view                          -> ("torch.Tensor", "view")
 *
 * One family function serves every spelling of an operation (operator.add, torch.add and
 * Tensor.add are three rows of one function); the row's `arg` is the family's constant (an
 * alk_binop, a reduction, a rank). A row's `params` are torch's own parameter names, so that an
 * argument is found whether the graph passes it by position or by keyword, and a module's
 * attribute of the same name (Conv2d.stride) answers when the call does not give it.
 *
 * Every function here follows the kit's error rule: the first failure is recorded in the op
 * (sticky) and later calls return neutral values.
 */
#ifndef ALK_PLUGINS_TORCH_INT_H
#define ALK_PLUGINS_TORCH_INT_H

#include "nn/nn.h"
#include "plugin/alk_plugin.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The descriptor's apply_model (tracer.c): replays the graph payload `model`. */
int torch_apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                      alk_fva *const *inputs, size_t n_inputs, alk_diag *diag);

/* The module of method rows: call_method targets are names of torch.Tensor methods. */
#define TORCH_METHOD_MODULE "torch.Tensor"

/* ---- Readers shared by the families (common.c) ---------------------------------------------- */

/* Parameter `key` as an int that must be given (by position, keyword or module attribute). */
int64_t torch_required_int(alk_op *op, const char *key);

/* `dim` normalised against `ndim` axes (torch's wrap rule: -ndim <= dim < ndim). Fails the op
 * and returns false when it is out of range; `what` names the parameter in the message. */
bool torch_axis(alk_op *op, const char *what, int64_t dim, size_t ndim, size_t *ret_axis);

/*
 * The axes named by parameter `key`: an int, a sequence of ints, or absent/None/() = every axis
 * (`*ret_all` true). Writes the normalised, distinct axes to `ret_axes` (at most ALK_FVA_MAX_DIM)
 * and returns their number.
 */
size_t torch_axes(alk_op *op, const char *key, size_t ndim, int *ret_axes, bool *ret_all);

/* A tensor operand named `key`: the call's argument (F.linear's weight, a get_attr tensor), else
 * the module parameter of that role (nn.Linear's weight). NULL when absent (an error when
 * `required`). */
alk_fva *torch_tensor(alk_op *op, const char *key, bool required);

/* `x` with its values: a pending array (a table function waiting for its quantizer, see
 * trace/fvarray.h) is tabulated keeping the float values, as torch keeps them; anything else is
 * returned as is. Operations that cannot compose a table function (comparisons, reductions,
 * products with traced values, layers) take their inputs through this. */
alk_fva *torch_plain(alk_op *op, alk_fva *x);

/* alk_op_in(op, i) through torch_plain. */
alk_fva *torch_in(alk_op *op, size_t i);

/* A number argument (int, float or bool) as a double; false when `arg` is not one. */
bool torch_number_of(const alk_arg *arg, double *ret_value);

/* An operand that may be a Python number: the array itself, or a 0-d numeric array for a
 * number; fails the op naming `what` for anything else. */
alk_fva *torch_operand(alk_op *op, const char *what, const alk_arg *arg);

/* Integer sizes given as varargs ints after argument `first` (x.view(2, -1)) or as one
 * tuple/list argument (x.view((2, -1)), torch.reshape(x, shape)). Returns the count (at most
 * ALK_FVA_MAX_DIM), writing them to `ret`; SIZE_MAX after an error. */
size_t torch_sizes(alk_op *op, size_t first, const char *what, int64_t *ret);

/* A reshape of `x` to `shape` (n entries, one of them may be -1). */
alk_fva *torch_reshape(alk_op *op, const alk_fva *x, size_t n, const int64_t *shape);

/* ---- Families (one function per operation family; `arg` is the row's constant) -------------- */

/* shape.c: structure, sizes and attributes. */
alk_op_fn torch_identity, torch_dropout, torch_reshape_op, torch_flatten, torch_unflatten,
    torch_permute, torch_transpose, torch_t, torch_unsqueeze, torch_squeeze, torch_expand,
    torch_expand_as, torch_tile, torch_repeat_interleave, torch_moveaxis, torch_size, torch_getattr;

/* index.c: joins, splits and indexing. */
alk_op_fn torch_cat, torch_stack, torch_split, torch_chunk, torch_getitem;

/* dtype.c: constants and casts (`arg` of int/long: the dtype name). */
alk_op_fn torch_fill, torch_fill_like, torch_to;

/* arith.c: element-wise arithmetic, comparisons, bitwise operations, Python numbers. */
alk_op_fn torch_binary, torch_divide, torch_floor_divide, torch_remainder, torch_negate,
    torch_positive, torch_invert, torch_equal_all, torch_where, torch_clamp;

/* activations.c: the unary map (`arg`: its name), activations with parameters (`arg`: the name),
 * Hardtanh/ReLU6 (`arg`: two default bounds), LeakyReLU, PReLU. */
alk_op_fn torch_unary, torch_activation, torch_hardtanh, torch_leaky_relu, torch_prelu;

/* layers.c: the layers on the kernels of src/nn. Convolutions take their rank (size_t) as
 * `arg`, pools a torch_pool_def, padding modules a torch_pad_def, pixel shuffles NULL (shuffle)
 * or non-NULL (unshuffle). */
alk_op_fn torch_linear, torch_conv, torch_conv_transpose, torch_batch_norm, torch_pool,
    torch_adaptive_pool, torch_pad, torch_pad_module, torch_upsample, torch_pixel_shuffle,
    torch_embedding;

typedef struct torch_pool_def {
    alk_nn_pool_kind kind;
    size_t rank;
} torch_pool_def;

typedef struct torch_pad_def {
    alk_pad_mode mode;
    size_t rank;
} torch_pad_def;

/* common.c: a row that always refuses (`arg`: the message, e.g. "softmax is not supported"). */
alk_op_fn torch_unsupported;

/* reduce.c: reductions, arg-reductions, sorting, products. */
alk_op_fn torch_reduce, torch_max_min, torch_arg_reduce, torch_count_nonzero, torch_sort,
    torch_matmul, torch_einsum;

/* The constants of the arithmetic rows: an alk_binop plus how torch spells the operands. */
typedef struct torch_binary_def {
    alk_binop op;
    bool with_alpha; /* torch.add/sub's alpha: a + alpha * b */
} torch_binary_def;

#endif

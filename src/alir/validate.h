/*
 * Structural validation of a CombLogic program: what the reference's loaders and interpreter
 * check, plus the checks that make every accepted program safe to interpret (no undefined
 * behaviour, no out-of-bounds access) whatever its input values.
 */
#ifndef ALK_ALIR_VALIDATE_H
#define ALK_ALIR_VALIDATE_H

#include "alir/program.h"

/*
 * Checks `program` (borrowed). Returns ALK_OK, or ALK_EINVAL with a message naming the op (index
 * and opcode) or the field at fault: unknown opcode, wrong operand or payload count, an operand
 * that is not an earlier op (causality), a read index past the inputs, an output index past the
 * ops, a lookup table index past the tables, an interval that is not finite or has a step that is
 * not positive, a format wider than 64 bits, a shift outside int32, a bit-op code other than
 * 0/1/2, and a mux whose two operands both need realigning (the reference cannot run it).
 */
int alk_program_validate(const alk_program *program, alk_diag *diag);

#endif

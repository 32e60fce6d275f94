/*
 * Test helper: a Keras payload (plugins/keras/model_file.h) as JSON, for Python tests to compare
 * with what h5py and zipfile see. Bins become {"$hex": "..."}; besides the payload tree, "f64"
 * maps every weight address to its elements widened by alk_tensor_to_f64, each as C's "%a" text
 * ("nan", "inf" and "-inf" for those), so that float.fromhex reads them back exactly.
 */
#ifndef ALK_TESTS_KERAS_PAYLOAD_JSON_H
#define ALK_TESTS_KERAS_PAYLOAD_JSON_H

#include "core/vec.h"
#include "graph/value.h"

/* Appends {"payload": <payload>, "f64": {...}} to `out`; ALK_EINVAL (with `diag`) when a weight
 * is not a valid tensor or does not widen exactly. */
int payload_to_json(const alk_value *payload, alk_buf *out, alk_diag *diag);

#endif

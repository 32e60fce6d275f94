/*
 * What the graph-message harnesses check on a decoded message (graph_checks.c).
 */
#ifndef ALK_FUZZ_GRAPH_CHECKS_H
#define ALK_FUZZ_GRAPH_CHECKS_H

#include "graph/value.h"

/* The limits both decoders run with: small, so that each input is quick. */
void fuzz_graph_limits(alk_value_limits *ret_limits);

/*
 * The path a decoded graph message (borrowed) takes next: it must re-encode to msgpack that
 * decodes to the same encoding, and, when it is a map, go through the `convert` request's checks
 * (schema, sizes, hwconf, solver options, framework) without crashing; aborts on a mismatch.
 */
void fuzz_check_graph(const alk_value *message);

#endif

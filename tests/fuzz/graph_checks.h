/*
 * What the graph-message harnesses check on a decoded message (graph_checks.c).
 */
#ifndef ALK_FUZZ_GRAPH_CHECKS_H
#define ALK_FUZZ_GRAPH_CHECKS_H

#include "graph/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes `data` as a graph message in JSON (`json`) or msgpack, with small limits so that each
 * input is quick, and takes it down the path a decoded message takes next: it must re-encode to
 * msgpack that decodes to the same encoding, and, when it is a map, go through the `convert`
 * request's checks (schema, sizes, hwconf, solver options, framework) without crashing; aborts
 * on a mismatch.
 */
void fuzz_graph_input(const uint8_t *data, size_t size, bool json);

#endif

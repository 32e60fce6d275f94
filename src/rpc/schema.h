/*
 * The wire protocol's tables, generated at build time from the JSON files in schemas/ by
 * schemas/gen.py (the schemas are the single source of these tables, of docs/protocol.md and of the
 * Python client's checks). This header declares their shape; schema_tables.c (generated) defines
 * them.
 *
 * Thread rule: the tables are constant.
 */
#ifndef ALK_RPC_SCHEMA_H
#define ALK_RPC_SCHEMA_H

#include "schema_ids.h" /* generated: ALK_RPC_METHOD_<NAME>, ALK_RPC_N_METHODS */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The protocol version this code speaks, and the versions it accepts in `v`. */
enum { ALK_RPC_PROTOCOL = 1 };

/* Value types of a field, as a bit mask. */
enum {
    ALK_RPC_T_NIL = 1u << 0,
    ALK_RPC_T_BOOL = 1u << 1,
    ALK_RPC_T_INT = 1u << 2,  /* any integer */
    ALK_RPC_T_UINT = 1u << 3, /* an integer >= 0 */
    ALK_RPC_T_FLOAT = 1u << 4,
    ALK_RPC_T_STR = 1u << 5,
    ALK_RPC_T_BIN = 1u << 6,
    ALK_RPC_T_ARRAY = 1u << 7,
    ALK_RPC_T_MAP = 1u << 8,
    ALK_RPC_T_ANY = 0x1ffu,
};

/* One top-level field of a request. */
typedef struct alk_rpc_field {
    const char *name;
    uint32_t types;      /* ALK_RPC_T_* mask */
    uint32_t item_types; /* arrays: the mask every element must match */
    bool required;
    uint64_t min_len; /* str/bin bytes, array items, map entries */
    uint64_t max_len; /* 0: unbounded */
    bool has_min;     /* int/uint value bounds */
    int64_t min;
    bool has_max;
    int64_t max;
    const char *const *enum_values; /* NULL-terminated allowed strings, or NULL */
} alk_rpc_field;

/* Which sockets a method is callable on. */
enum { ALK_RPC_SOCKET_SERVICE = 1u << 0, ALK_RPC_SOCKET_CONTROL = 1u << 1 };

enum {
    ALK_RPC_METHOD_CACHEABLE = 1u << 0, /* duplicates are answered from the reply cache */
    ALK_RPC_METHOD_QUEUED = 1u << 1,    /* runs as a job on a worker */
    ALK_RPC_METHOD_HIDDEN = 1u << 2,    /* a test hook, absent from the docs and from `info` */
};

typedef struct alk_rpc_method {
    const char *name;
    alk_rpc_method_id id; /* its index in alk_rpc_methods[] */
    uint32_t sockets;     /* ALK_RPC_SOCKET_* mask */
    uint32_t flags;       /* ALK_RPC_METHOD_* mask */
    const alk_rpc_field *fields;
    size_t n_fields;
} alk_rpc_method;

extern const alk_rpc_field alk_rpc_envelope_fields[];
extern const size_t alk_rpc_n_envelope_fields;
extern const alk_rpc_method alk_rpc_methods[];
extern const size_t alk_rpc_n_methods;

/*
 * The limits a server enforces (schemas/limits.json). Field names are the wire names of
 * `info.limits`, the config keys and, with dashes, the daemon's flags.
 */
typedef struct alk_rpc_limits {
    uint64_t max_message_bytes;
    uint64_t max_depth;
    uint64_t max_items;
    uint64_t max_nodes;
    uint64_t max_string_bytes;
    uint64_t max_tensor_elements;
    uint64_t max_dims;
    uint64_t max_graph_nodes;
    uint64_t max_inputs;
    uint64_t default_timeout_ms;
    uint64_t max_timeout_ms;
} alk_rpc_limits;

/* Fills `limits` (owned by the caller) with the defaults of schemas/limits.json. */
void alk_rpc_limits_default(alk_rpc_limits *limits);

/* Name, place and bounds of each limit, for flags, config keys and `info`. */
typedef struct alk_rpc_limit_field {
    const char *name;
    size_t offset;
    uint64_t min;
    uint64_t max; /* 0: unbounded */
} alk_rpc_limit_field;

extern const alk_rpc_limit_field alk_rpc_limit_fields[];
extern const size_t alk_rpc_n_limit_fields;

/* The method called `name`, or NULL. */
const alk_rpc_method *alk_rpc_method_find(const char *name);

#endif

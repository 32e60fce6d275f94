/*
 * alk_require(cond): an internal invariant, checked in every build.
 *
 * For facts the code itself guarantees (a plan that accounts for every axis, a table built with
 * as many rows as it was sized for), never for anything a request, a model file or a plugin
 * supplies: bad input gets a clear error through the usual return codes, not an abort. A failed
 * requirement means a bug in libalkaid; going on would produce a wrong program, which for a
 * bit-exact tool is worse than stopping, so it prints the expression and where it failed, and
 * aborts (knot's kr_require, nng's NNI_ASSERT).
 */
#ifndef ALK_CORE_REQUIRE_H
#define ALK_CORE_REQUIRE_H

#define alk_require(cond)                                                                          \
    ((cond) ? (void)0 : alk__require_failed(#cond, __FILE__, __LINE__, __func__))

/* Reports a failed alk_require on stderr and aborts. */
_Noreturn void alk__require_failed(const char *expr, const char *file, int line, const char *func);

#endif

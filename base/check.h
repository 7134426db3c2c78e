// Error propagation: one macro family, used by every internal function that
// returns gcclResult_t. A failure records a human-readable reason for the
// calling thread (see error.cc); the public entry points copy it to the
// communicator so gcclGetLastError can report it.
#pragma once

#include <cstdarg>

#include "gccl/gccl.h"

namespace gccl {

// Records `fmt` as the reason of the current failure on this thread and
// returns `code`, so that `return setError(...)` reads naturally.
gcclResult_t setError(gcclResult_t code, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));
gcclResult_t setErrorV(gcclResult_t code, const char* fmt, va_list ap);
// The reason recorded last on this thread ("" if none).
const char* threadLastError();
void clearThreadLastError();

}  // namespace gccl

#define GCCL_CHECK(call)                                          \
  do {                                                            \
    gcclResult_t gcclCheckResult_ = (call);                       \
    if (gcclCheckResult_ != gcclSuccess) return gcclCheckResult_; \
  } while (0)

// Checks an argument or state condition; on failure records the reason and returns `code`.
#define GCCL_REQUIRE(cond, code, ...)                          \
  do {                                                         \
    if (!(cond)) return ::gccl::setError((code), __VA_ARGS__); \
  } while (0)

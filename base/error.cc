#include <cstdio>
#include <cstring>

#include "base/check.h"
#include "base/log.h"

namespace gccl {

namespace {
thread_local char tlsLastError[1024];
}

gcclResult_t setErrorV(gcclResult_t code, const char* fmt, va_list ap) {
  // Formatted apart first: the arguments often include the previous reason.
  char buf[sizeof(tlsLastError)];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  memcpy(tlsLastError, buf, sizeof(buf));
  GCCL_INFO(kLogAll, "error %s: %s", gcclGetErrorString(code), tlsLastError);
  return code;
}

gcclResult_t setError(gcclResult_t code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gcclResult_t r = setErrorV(code, fmt, ap);
  va_end(ap);
  return r;
}

const char* threadLastError() {
  return tlsLastError;
}
void clearThreadLastError() {
  tlsLastError[0] = '\0';
}

}  // namespace gccl

extern "C" const char* gcclGetErrorString(gcclResult_t result) {
  switch (result) {
    case gcclSuccess:
      return "no error";
    case gcclUnhandledCudaError:
      return "unhandled cuda error (a CUDA call failed)";
    case gcclSystemError:
      return "unhandled system error (a system call failed)";
    case gcclInternalError:
      return "internal error (a bug in gccl or a corrupt message)";
    case gcclInvalidArgument:
      return "invalid argument";
    case gcclInvalidUsage:
      return "invalid usage (wrong call order or state)";
    case gcclRemoteError:
      return "remote process exited or there was a network error";
    case gcclInProgress:
      return "operation in progress";
    case gcclTimeout:
      return "timed out (no progress before the deadline)";
    case gcclAborted:
      return "communicator aborted";
    default:
      return "unknown result code";
  }
}

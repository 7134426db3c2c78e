// The communicator: what a gcclComm_t points to.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/engine.h"
#include "core/net_if.h"
#include "gccl/gccl.h"

struct gcclComm {
  int rank = 0;
  int nranks = 0;
  int64_t timeoutMs = 0;
  int dataSockets = 0;
  std::string ifname;
  gccl::SockAddr listenAddr;  // where peers reach this rank (logs, tests)
  std::unique_ptr<gccl::Engine> engine;

  // Initialization state (non-blocking init runs in initThread).
  std::atomic<gcclResult_t> initState{gcclInProgress};
  std::string initError;
  std::thread initThread;

  // Caller-side sequence numbers (the API is not thread-safe per communicator,
  // as in NCCL; one thread issues a communicator's calls).
  uint64_t collectiveSeq = 0;
  uint64_t asyncObjects = 0;  // ids of objects that exchange asynchronous traffic
  std::vector<uint64_t> sendSeq, recvSeq;

  // API calls running inside this communicator (destroy waits for them).
  std::atomic<int> activeCalls{0};

  // gcclGetLastError(comm).
  std::mutex errorMutex;
  std::string lastError;
};

namespace gccl {

// Checks that `comm` is a live communicator (not destroyed, not garbage)
// without touching its memory unless it is registered. With `hold`, counts
// the caller as a call in flight (see ApiGuard).
gcclResult_t checkComm(gcclComm* comm, const char* call, bool hold = false);
// Checks that `comm` finished initializing successfully and is not broken.
gcclResult_t checkCommReady(gcclComm* comm, const char* call);
// Holds a communicator for the duration of one API call: checks that it is
// live and keeps gcclCommDestroy/Abort from freeing it until the call returns.
class ApiGuard {
 public:
  ApiGuard(gcclComm* comm, const char* call);
  ~ApiGuard();
  ApiGuard(const ApiGuard&) = delete;
  ApiGuard& operator=(const ApiGuard&) = delete;
  gcclResult_t result() const { return result_; }

 private:
  gcclComm* comm_;
  gcclResult_t result_;
};
void waitForCalls(gcclComm* comm);

// Copies this thread's last error to comm->lastError (comm may be null).
gcclResult_t recordError(gcclComm* comm, gcclResult_t result);

}  // namespace gccl

// The communicator: what a gcclComm_t points to.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/bootstrap.h"
#include "core/engine.h"
#include "base/net_if.h"
#include "gccl/gccl.h"

struct gcclComm {
  int rank = 0;
  int nranks = 0;
  int64_t timeoutMs = 0;
  int dataSockets = 0;
  std::string ifname;
  // The settings it was made with (a shrink gives them to the new one).
  std::string configIfname, configTransport;
  bool faultTolerant = false;
  gccl::UniqueIdFields idFields;  // the unique id it was made from
  bool rejoined = false;          // made by gcclCommRejoin
  // Made by gcclCommRejoin and gcclGossipJoin not issued yet: it must be the
  // first collective (issuing thread only).
  bool joinPending = false;
  std::string rendezvousFile;  // rank 0, file rendezvous, fault-tolerant: removed at destroy
  gccl::SockAddr listenAddr;   // where peers reach this rank over TCP (logs, tests)
  std::vector<std::string> transports;  // the transport chosen for each rank
  std::unique_ptr<gccl::Engine> engine;

  // Initialization state (non-blocking init runs in initThread).
  std::atomic<gcclResult_t> initState{gcclInProgress};
  std::string initError;
  std::thread initThread;

  // Caller-side sequence numbers. One thread at a time issues a
  // communicator's calls (IssueGuard enforces it), so these need no lock.
  uint64_t collectiveSeq = 0;
  uint64_t asyncObjects = 0;  // ids of objects that exchange asynchronous traffic
  std::vector<uint64_t> sendSeq, recvSeq;

  // API calls running inside this communicator (destroy waits for them).
  std::atomic<int> activeCalls{0};

  // The thread inside an issuing call (IssueGuard: a token of that thread,
  // null when none) and how deep (calls nest; written by that thread only).
  std::atomic<const void*> issuer{nullptr};
  int issueDepth = 0;
  std::atomic<const char*> issuingCall{""};

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
// checkCommReady without the registry check, for a caller that holds an
// ApiGuard on `comm`.
gcclResult_t checkCommState(gcclComm* comm, const char* call);
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

// Held for the duration of a call that issues operations (collectives,
// point-to-point, gossip steps). Ranks match such calls by the order each
// one issues them, so two threads issuing at once on one communicator would
// pair their calls differently on different ranks and mix data silently.
// A call from a second thread while another thread is inside an issuing call
// therefore breaks the communicator on every rank with gcclInvalidUsage and
// a reason naming both calls. Threads may take turns (one issues after the
// other's call returned, even with its request still in flight).
class IssueGuard {
 public:
  // `active` false: the call failed before issuing anything; nothing is held.
  IssueGuard(gcclComm* comm, const char* call, bool active);
  ~IssueGuard();
  IssueGuard(const IssueGuard&) = delete;
  IssueGuard& operator=(const IssueGuard&) = delete;
  gcclResult_t result() const { return result_; }

 private:
  gcclComm* comm_ = nullptr;
  gcclResult_t result_ = gcclSuccess;
};

// Copies this thread's last error to comm->lastError (comm may be null).
gcclResult_t recordError(gcclComm* comm, gcclResult_t result);

}  // namespace gccl

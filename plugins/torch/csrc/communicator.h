// A gccl communicator shared by the torch.distributed backend and the custom ops.
//
// Both issue calls on the same gcclComm_t, and gccl wants the calls that issue operations on one
// communicator to come from one thread at a time: every issuing call holds issueMutex(). Custom
// ops name a communicator by its id (an int in their schema); the registry maps ids to live
// communicators without keeping them alive.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "gccl/gccl.h"

namespace gccl_torch {

// Throws c10::DistBackendError "gccl: <what> failed: <class>: <reason>" when r is not
// gcclSuccess. The reason comes from gcclGetLastError(comm) (or the thread's last error when
// comm is null), which names the argument or the peer at fault; call it on the thread that made
// the failing call, right after it.
void check(gcclResult_t r, const std::string& what, gcclComm_t comm);
[[noreturn]] void fail(gcclResult_t r, const std::string& what, gcclComm_t comm);

class Communicator {
 public:
  // Takes ownership of comm: destroyed (or aborted, when it broke) with the object.
  Communicator(gcclComm_t comm, int rank, int size);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  gcclComm_t get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  int64_t id() const { return id_; }
  std::mutex& issueMutex() { return issueMutex_; }
  // Stops every operation at once (waiting calls fail with gcclAborted); the object then only
  // frees what is left.
  void abort();

 private:
  gcclComm_t comm_;
  int rank_;
  int size_;
  int64_t id_;
  std::mutex issueMutex_;
  bool aborted_ = false;
};

// Creates the communicator of `rank` from a unique id (collective over `size` ranks).
std::shared_ptr<Communicator> createCommunicator(const gcclUniqueId& id, int rank, int size,
                                                 int timeoutMs);
// The live communicator with this id; throws c10::Error naming the id when there is none.
std::shared_ptr<Communicator> lookupCommunicator(int64_t id);

}  // namespace gccl_torch

#include "communicator.h"

#include <c10/util/Exception.h>

#include <map>

namespace gccl_torch {

namespace {

std::mutex registryMutex;
std::map<int64_t, std::weak_ptr<Communicator>> registry;
int64_t nextId = 1;

}  // namespace

void fail(gcclResult_t r, const std::string& what, gcclComm_t comm) {
  const char* why = gcclGetLastError(comm);
  if (why == nullptr || *why == '\0') why = gcclGetLastError(nullptr);
  std::string message = "gccl: " + what + " failed: " + gcclGetErrorString(r);
  if (why != nullptr && *why != '\0') message += std::string(": ") + why;
  C10_THROW_ERROR(DistBackendError, message);
}

void check(gcclResult_t r, const std::string& what, gcclComm_t comm) {
  if (r != gcclSuccess) fail(r, what, comm);
}

Communicator::Communicator(gcclComm_t comm, int rank, int size)
    : comm_(comm), rank_(rank), size_(size) {
  std::lock_guard<std::mutex> lock(registryMutex);
  id_ = nextId++;
}

Communicator::~Communicator() {
  {
    std::lock_guard<std::mutex> lock(registryMutex);
    registry.erase(id_);
  }
  if (aborted_) return;
  gcclResult_t asyncError = gcclSuccess;
  // A broken communicator has nothing left to wait for: abort it instead of letting destroy
  // wait for operations that can no longer finish.
  if (gcclCommGetAsyncError(comm_, &asyncError) != gcclSuccess || asyncError != gcclSuccess) {
    gcclCommAbort(comm_);
  } else if (gcclCommDestroy(comm_) != gcclSuccess) {
    gcclCommAbort(comm_);
  }
}

void Communicator::abort() {
  if (aborted_) return;
  aborted_ = true;
  gcclCommAbort(comm_);
}

std::shared_ptr<Communicator> createCommunicator(const gcclUniqueId& id, int rank, int size,
                                                 int timeoutMs) {
  gcclConfig_t config = GCCL_CONFIG_INITIALIZER;
  config.timeoutMs = timeoutMs;
  gcclComm_t comm = nullptr;
  check(gcclCommInitRankConfig(&comm, size, id, rank, &config),
        "communicator init (rank " + std::to_string(rank) + " of " + std::to_string(size) + ")",
        nullptr);
  auto communicator = std::make_shared<Communicator>(comm, rank, size);
  std::lock_guard<std::mutex> lock(registryMutex);
  registry[communicator->id()] = communicator;
  return communicator;
}

std::shared_ptr<Communicator> lookupCommunicator(int64_t id) {
  std::lock_guard<std::mutex> lock(registryMutex);
  auto it = registry.find(id);
  std::shared_ptr<Communicator> communicator;
  if (it != registry.end()) communicator = it->second.lock();
  TORCH_CHECK(communicator != nullptr, "gccl: no live communicator with id ", id,
              " (its process group was destroyed, or the id is wrong)");
  return communicator;
}

}  // namespace gccl_torch

#include "runtime.h"

#include <pthread.h>

#include <cstring>
#include <map>
#include <vector>

namespace gccl_tf {

namespace {

template <typename T>
class Registry {
 public:
  explicit Registry(const char* kind) : kind_(kind) {}
  int64_t add(std::shared_ptr<T> item) {
    std::lock_guard<std::mutex> lock(mutex_);
    items_[next_] = std::move(item);
    return next_++;
  }
  std::shared_ptr<T> get(int64_t id, absl::Status* status) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = items_.find(id);
    if (it == items_.end()) {
      *status = absl::InvalidArgumentError("gccl: no " + std::string(kind_) + " with id " +
                                           std::to_string(id) + " (destroyed, or never made)");
      return nullptr;
    }
    return it->second;
  }
  std::shared_ptr<T> take(int64_t id, absl::Status* status) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = items_.find(id);
    if (it == items_.end()) {
      *status = absl::InvalidArgumentError("gccl: no " + std::string(kind_) + " with id " +
                                           std::to_string(id) + " (destroyed, or never made)");
      return nullptr;
    }
    auto item = std::move(it->second);
    items_.erase(it);
    return item;
  }

 private:
  const char* kind_;
  std::mutex mutex_;
  std::map<int64_t, std::shared_ptr<T>> items_;
  int64_t next_ = 1;
};

Registry<Communicator>& communicators() {
  static auto* registry = new Registry<Communicator>("communicator");
  return *registry;
}
Registry<Topology>& topologies() {
  static auto* registry = new Registry<Topology>("topology");
  return *registry;
}
Registry<Pairwise>& pairwises() {
  static auto* registry = new Registry<Pairwise>("pairwise-gossip state");
  return *registry;
}

std::string reasonOf(gcclComm_t comm) {
  const char* why = comm != nullptr ? gcclGetLastError(comm) : nullptr;
  if (why == nullptr || *why == '\0') why = gcclGetLastError(nullptr);
  return why != nullptr ? why : "";
}

}  // namespace

absl::Status gcclStatus(gcclResult_t r, const std::string& what, gcclComm_t comm) {
  if (r == gcclSuccess) return absl::OkStatus();
  std::string message = "gccl: " + what + " failed: " + gcclGetErrorString(r);
  std::string why = reasonOf(comm);
  if (!why.empty()) message += ": " + why;
  switch (r) {
    case gcclInvalidArgument:
      return absl::InvalidArgumentError(message);
    case gcclInvalidUsage:
      return absl::FailedPreconditionError(message);
    case gcclTimeout:
      return absl::DeadlineExceededError(message);
    case gcclRemoteError:
      return absl::UnavailableError(message);
    case gcclAborted:
      return absl::AbortedError(message);
    default:
      return absl::InternalError(message);
  }
}

// ---- Completer --------------------------------------------------------------------------------

Completer::Completer(const std::string& name) {
  thread_ = std::thread([this] { loop(); });
  pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
}

Completer::~Completer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  thread_.join();
}

void Completer::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  ready_.notify_one();
}

void Completer::loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Nothing to time out here: the thread only sleeps while it has nothing to do, and every
      // task's own waits are bounded by the communicator's timeout.
      ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

// ---- Communicator ---------------------------------------------------------------------------

Communicator::Communicator(gcclComm_t comm, int rank, int size)
    : comm_(comm),
      rank_(rank),
      size_(size),
      completer_(std::make_unique<Completer>("gccl-tf-done")) {}

Communicator::~Communicator() {
  completer_.reset();  // finishes every queued wait first
  if (aborted_) return;
  gcclResult_t asyncError = gcclSuccess;
  // A broken communicator has nothing left to wait for: abort it rather than let destroy wait
  // for operations that can no longer finish.
  if (gcclCommGetAsyncError(comm_, &asyncError) != gcclSuccess || asyncError != gcclSuccess ||
      gcclCommDestroy(comm_) != gcclSuccess) {
    gcclCommAbort(comm_);
  }
}

std::shared_ptr<Communicator> Communicator::make(gcclComm_t comm, int rank, int size) {
  return std::shared_ptr<Communicator>(new Communicator(comm, rank, size), [](Communicator* c) {
    if (c->completer_->onThread()) {
      std::thread([c] { delete c; }).detach();
    } else {
      delete c;
    }
  });
}

void Communicator::abort() {
  if (aborted_) return;
  aborted_ = true;
  gcclCommAbort(comm_);
}

Topology::~Topology() {
  if (topo != nullptr) gcclTopologyDestroy(topo);
}

Pairwise::~Pairwise() {
  if (pairwise != nullptr) {
    std::lock_guard<std::mutex> lock(comm->issueMutex());
    gcclPairwiseDestroy(pairwise);
  }
}

std::shared_ptr<Communicator> lookupCommunicator(int64_t id, absl::Status* status) {
  return communicators().get(id, status);
}
std::shared_ptr<Topology> lookupTopology(int64_t id, absl::Status* status) {
  return topologies().get(id, status);
}
std::shared_ptr<Pairwise> lookupPairwise(int64_t id, absl::Status* status) {
  return pairwises().get(id, status);
}

absl::Status makeCodec(const std::string& codec, int bits, int64_t bucket,
                       const std::string& rounding, int64_t seed, double latticeStep,
                       int64_t topkCount, double topkFraction, gcclCodecConfig_t* out) {
  std::string why = gccl_plugin::makeCodecConfig(codec, bits, bucket, rounding, seed, latticeStep,
                                                 topkCount, topkFraction, out);
  return why.empty() ? absl::OkStatus() : absl::InvalidArgumentError(why);
}

}  // namespace gccl_tf

// ---- Control calls for Python (ctypes) ----------------------------------------------------------
//
// Each returns 0 (or a positive id) on success and -1 on failure, with the reason in
// gccl_tf_last_error() on the same thread.

using namespace gccl_tf;

namespace {

thread_local std::string lastError;

int failWith(const absl::Status& status) {
  lastError = std::string(status.message());
  return -1;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) const char* gccl_tf_last_error() {
  return lastError.c_str();
}

__attribute__((visibility("default"))) int gccl_tf_version() {
  int version = 0;
  gcclGetVersion(&version);
  return version;
}

// A communicator from the launcher's environment (gcclCommInitFromEnv). timeout_ms <= 0 leaves
// the timeout to GCCL_TIMEOUT_MS.
__attribute__((visibility("default"))) int64_t gccl_tf_comm_init_from_env(int timeout_ms) {
  gcclConfig_t config = GCCL_CONFIG_INITIALIZER;
  if (timeout_ms > 0) config.timeoutMs = timeout_ms;
  gcclComm_t comm = nullptr;
  gcclResult_t r = gcclCommInitFromEnv(&comm, &config);
  if (r != gcclSuccess)
    return failWith(gcclStatus(r, "communicator init from the environment", nullptr));
  int rank = 0, size = 0;
  gcclCommUserRank(comm, &rank);
  gcclCommCount(comm, &size);
  return communicators().add(Communicator::make(comm, rank, size));
}

__attribute__((visibility("default"))) int gccl_tf_comm_info(int64_t id, int* rank, int* size) {
  absl::Status status;
  auto c = lookupCommunicator(id, &status);
  if (c == nullptr) return failWith(status);
  *rank = c->rank();
  *size = c->size();
  return 0;
}

// Releases the registry's reference; the communicator is destroyed once no running op holds it
// (after its queued requests completed). abort != 0 aborts it first.
__attribute__((visibility("default"))) int gccl_tf_comm_destroy(int64_t id, int abort) {
  absl::Status status;
  auto c = communicators().take(id, &status);
  if (c == nullptr) return failWith(status);
  if (abort != 0) c->abort();
  return 0;
}

__attribute__((visibility("default"))) int64_t gccl_tf_topology_create(int kind, int nranks,
                                                                       int peers) {
  auto t = std::make_shared<Topology>();
  gcclResult_t r =
      gcclTopologyCreate(&t->topo, static_cast<gcclTopologyKind_t>(kind), nranks, peers);
  if (r != gcclSuccess) return failWith(gcclStatus(r, "topology create", nullptr));
  t->nranks = nranks;
  return topologies().add(std::move(t));
}

__attribute__((visibility("default"))) int64_t gccl_tf_topology_from_weights(
    int nranks, int nsteps, const double* weights) {
  auto t = std::make_shared<Topology>();
  gcclResult_t r = gcclTopologyCreateFromWeights(&t->topo, nranks, nsteps, weights);
  if (r != gcclSuccess) return failWith(gcclStatus(r, "topology from weights", nullptr));
  t->nranks = nranks;
  return topologies().add(std::move(t));
}

__attribute__((visibility("default"))) int gccl_tf_topology_period(int64_t id, int* period) {
  absl::Status status;
  auto t = lookupTopology(id, &status);
  if (t == nullptr) return failWith(status);
  gcclResult_t r = gcclTopologyPeriod(t->topo, period);
  return r == gcclSuccess ? 0 : failWith(gcclStatus(r, "topology period", nullptr));
}

__attribute__((visibility("default"))) int gccl_tf_topology_destroy(int64_t id) {
  absl::Status status;
  return topologies().take(id, &status) != nullptr ? 0 : failWith(status);
}

// Collective: registers a copy of `initial` (count elements of float32 or float64) as the model
// that pairwise exchanges average (gcclPairwiseCreateEx, codec settings as makeCodec).
__attribute__((visibility("default"))) int64_t gccl_tf_pairwise_create(
    int64_t comm, int64_t topology, int dtype, int64_t count, const void* initial, int64_t seed,
    const char* codec, int bits, int64_t bucket, const char* rounding, int64_t codecSeed,
    double latticeStep) {
  absl::Status status;
  auto c = lookupCommunicator(comm, &status);
  if (c == nullptr) return failWith(status);
  auto t = lookupTopology(topology, &status);
  if (t == nullptr) return failWith(status);
  if (dtype != gcclFloat32 && dtype != gcclFloat64) {
    return failWith(
        absl::InvalidArgumentError("gccl: pairwise_gossip: the model must be float32 or float64"));
  }
  if (count < 0) {
    return failWith(absl::InvalidArgumentError("gccl: pairwise_gossip: negative count " +
                                               std::to_string(count)));
  }
  gccl_plugin::GossipCodecOptions options;
  status =
      makeCodec(codec, bits, bucket, rounding, codecSeed, latticeStep, 0, 0.01, &options.codec);
  if (!status.ok()) return failWith(status);

  auto p = std::make_shared<Pairwise>();
  p->type = static_cast<gcclDataType_t>(dtype);
  p->count = static_cast<size_t>(count);
  size_t bytes = p->count * (dtype == gcclFloat32 ? 4 : 8);
  p->model.reset(new char[bytes > 0 ? bytes : 1]);
  p->snapshot.reset(new char[bytes > 0 ? bytes : 1]);
  if (bytes > 0) {
    std::memcpy(p->model.get(), initial, bytes);
    std::memcpy(p->snapshot.get(), initial, bytes);
  }
  gcclResult_t r;
  {
    std::lock_guard<std::mutex> lock(c->issueMutex());
    r = gcclPairwiseCreateEx(&p->pairwise, p->model.get(), p->count, p->type, t->topo,
                             static_cast<uint64_t>(seed), options.get(), c->get());
    if (r != gcclSuccess) return failWith(gcclStatus(r, "pairwise_gossip create", c->get()));
  }
  p->comm = std::move(c);
  p->topology = std::move(t);
  return pairwises().add(std::move(p));
}

// Copies the registered model (what neighbours mixed into it included) into out.
__attribute__((visibility("default"))) int gccl_tf_pairwise_read(int64_t id, void* out) {
  absl::Status status;
  auto p = lookupPairwise(id, &status);
  if (p == nullptr) return failWith(status);
  gcclResult_t r = gcclPairwiseLock(p->pairwise);
  if (r != gcclSuccess) return failWith(gcclStatus(r, "pairwise_gossip read", p->comm->get()));
  std::memcpy(out, p->model.get(), p->count * (p->type == gcclFloat32 ? 4 : 8));
  r = gcclPairwiseUnlock(p->pairwise);
  return r == gcclSuccess ? 0 : failWith(gcclStatus(r, "pairwise_gossip read", p->comm->get()));
}

// Collective: waits until no rank can still ask this one for an exchange, then frees the state.
__attribute__((visibility("default"))) int gccl_tf_pairwise_destroy(int64_t id) {
  absl::Status status;
  auto p = pairwises().take(id, &status);
  if (p == nullptr) return failWith(status);
  gcclResult_t r;
  {
    std::lock_guard<std::mutex> lock(p->comm->issueMutex());
    r = gcclPairwiseDestroy(p->pairwise);
    p->pairwise = nullptr;
  }
  return r == gcclSuccess ? 0 : failWith(gcclStatus(r, "pairwise_gossip destroy", p->comm->get()));
}

}  // extern "C"

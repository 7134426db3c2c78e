// What the TensorFlow ops share: communicators (each with a thread of its own that completes
// its requests), topologies and pairwise-gossip states, each named by an integer id that the
// ops carry as an attribute (a graph cannot hold a C handle). The control calls that make and
// free them are plain C functions (runtime.cc, `gccl_tf_*`) that gccl.tensorflow calls
// through ctypes on the same loaded library.
#pragma once

#include <absl/status/status.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gccl/gccl.h"
#include "gccl_codec_options.h"

namespace gccl_tf {

// "gccl: <what> failed: <class>: <reason>" as a TensorFlow status whose code follows the gccl
// result (invalid argument, deadline exceeded for a timeout, unavailable for a failed peer,
// aborted, failed precondition for invalid usage, internal otherwise). The reason is
// gcclGetLastError(comm) (or this thread's last error when comm is null): call it on the thread
// that made the failing call, right after it.
absl::Status gcclStatus(gcclResult_t r, const std::string& what, gcclComm_t comm);

// Runs tasks one after another, in the order they were posted, on a thread of its own.
class Completer {
 public:
  explicit Completer(const std::string& name);
  // Runs what is still queued, then joins the thread.
  ~Completer();
  Completer(const Completer&) = delete;
  Completer& operator=(const Completer&) = delete;
  void post(std::function<void()> task);
  bool onThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

// A communicator, its issue mutex (gccl wants the calls that issue operations on one
// communicator to come from one thread at a time) and its completion thread. Tasks posted to
// the completer must not hold a reference to the Communicator: the destructor drains them.
class Communicator {
 public:
  Communicator(gcclComm_t comm, int rank, int size);
  // Lets the completer finish what is queued (each wait bounded by the communicator's timeout),
  // then destroys the communicator (aborts it when it is broken).
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  gcclComm_t get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  std::mutex& issueMutex() { return issueMutex_; }
  void post(std::function<void()> task) { completer_->post(std::move(task)); }
  void abort();

  // Makes a communicator whose last reference may be dropped anywhere: dropped on its own
  // completion thread (a kernel that TensorFlow ran from a `done` callback there), the
  // destruction moves to a thread of its own, as a thread cannot join itself.
  static std::shared_ptr<Communicator> make(gcclComm_t comm, int rank, int size);

 private:
  gcclComm_t comm_;
  int rank_;
  int size_;
  std::mutex issueMutex_;
  bool aborted_ = false;
  std::unique_ptr<Completer> completer_;
};

struct Topology {
  gcclTopology_t topo = nullptr;
  int nranks = 0;
  ~Topology();
};

// Pairwise gossip over a model buffer that gccl owns the right to change between exchanges (a
// neighbour's exchange is served by the progress thread at any time). `snapshot` is what the
// TensorFlow side last received, so that an exchange adds the local updates made since
// (x - snapshot) to the buffer instead of overwriting what neighbours mixed into it.
struct Pairwise {
  std::shared_ptr<Communicator> comm;
  std::shared_ptr<Topology> topology;
  gcclPairwise_t pairwise = nullptr;
  gcclDataType_t type = gcclFloat32;
  size_t count = 0;
  std::unique_ptr<char[]> model;
  std::unique_ptr<char[]> snapshot;
  ~Pairwise();
};

// The live object with this id, or null with *status naming the id.
std::shared_ptr<Communicator> lookupCommunicator(int64_t id, absl::Status* status);
std::shared_ptr<Topology> lookupTopology(int64_t id, absl::Status* status);
std::shared_ptr<Pairwise> lookupPairwise(int64_t id, absl::Status* status);

// A codec configuration from its settings by name (the op attributes and the ctypes calls use
// the same names): gccl_plugin::makeCodecConfig (plugins/common, shared with the torch
// extension) with its reason as an InvalidArgument status.
absl::Status makeCodec(const std::string& codec, int bits, int64_t bucket,
                       const std::string& rounding, int64_t seed, double latticeStep,
                       int64_t topkCount, double topkFraction, gcclCodecConfig_t* out);

}  // namespace gccl_tf

// The asynchronous Work of one backend call: the gccl requests it issued, what to do once they
// completed (copy results out of staging buffers), and a future that completes with its outputs.
//
// Whoever gets there first completes it: Work::wait() on the caller's thread (which then drives
// gccl's engine itself, the fast path of a blocking call), or the backend's completion thread,
// which completes works in issue order so that futures complete even when nobody waits. gccl
// allows gcclWait from any thread. The completion thread sleeps until someone could need it (a
// future was asked for, completion was polled): a blocking call then pays no thread hand-off.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "communicator.h"

namespace gccl_torch {

// Wakes a backend's completion thread. Shared by the backend and its works, so that a work that
// outlives its backend can still ask (and nothing happens).
struct CompletionSignal {
  std::mutex mutex;
  std::condition_variable cv;
  uint64_t kicks = 0;
  bool stopping = false;
  void kick() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++kicks;
    }
    cv.notify_one();
  }
};

class GcclWork : public c10d::Work {
 public:
  GcclWork(std::shared_ptr<Communicator> comm, int rank, c10d::OpType type, std::string what,
           std::vector<at::Tensor> outputs);
  ~GcclWork() override;

  // Called before the work is handed out: requests to wait for, tensors to keep alive until
  // then, and the step that runs once all requests succeeded.
  void addRequest(gcclRequest_t request) { requests_.push_back(request); }
  void keepAlive(at::Tensor tensor) { keepAlive_.push_back(std::move(tensor)); }
  void setAfter(std::function<void()> after) { after_ = std::move(after); }
  void setSignal(std::shared_ptr<CompletionSignal> signal) { signal_ = std::move(signal); }
  bool done() const { return done_.load(std::memory_order_acquire); }

  bool isCompleted() override;

  bool wait(std::chrono::milliseconds timeout = kNoTimeout) override;
  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override;
  // The output tensors (valid once the work completed).
  std::vector<at::Tensor> result() override { return outputs_; }
  // Completes the work (waits for its requests) unless another thread already does.
  void complete();

 private:
  std::shared_ptr<Communicator> comm_;
  std::string what_;
  std::vector<at::Tensor> outputs_;
  std::vector<at::Tensor> keepAlive_;
  std::vector<gcclRequest_t> requests_;
  std::function<void()> after_;
  std::atomic<bool> claimed_{false};
  std::atomic<bool> done_{false};
  std::shared_ptr<CompletionSignal> signal_;
  c10::intrusive_ptr<c10::ivalue::Future> future_;
};

}  // namespace gccl_torch

// The asynchronous Work of one backend call: the gccl requests it issued, what to do once they
// completed (copy results out of staging buffers), and a future that completes with its outputs.
//
// Whoever gets there first completes it: Work::wait() on the caller's thread (which then drives
// gccl's engine itself, the fast path of a blocking call), or the backend's completion thread,
// which completes works in issue order so that futures complete even when nobody waits. gccl
// allows gcclWait from any thread.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "communicator.h"

namespace gccl_torch {

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
  c10::intrusive_ptr<c10::ivalue::Future> future_;
};

}  // namespace gccl_torch

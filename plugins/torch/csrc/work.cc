#include "work.h"

#include <c10/util/Exception.h>

namespace gccl_torch {

GcclWork::GcclWork(std::shared_ptr<Communicator> comm, int rank, c10d::OpType type,
                   std::string what, std::vector<at::Tensor> outputs)
    : c10d::Work(rank, type),
      comm_(std::move(comm)),
      what_(std::move(what)),
      outputs_(std::move(outputs)),
      future_(
          c10::make_intrusive<c10::ivalue::Future>(c10::ListType::create(c10::TensorType::get()))) {
}

GcclWork::~GcclWork() {
  // A work dropped before completion still owns requests: release them.
  if (!claimed_.exchange(true)) {
    for (gcclRequest_t request : requests_)
      gcclWait(request);
  }
}

void GcclWork::complete() {
  if (claimed_.exchange(true)) return;
  std::exception_ptr error;
  gcclResult_t first = gcclSuccess;
  std::string why;
  // Every request is waited for (and so released), even after one failed.
  for (gcclRequest_t request : requests_) {
    gcclResult_t r = gcclWait(request);
    if (r != gcclSuccess && first == gcclSuccess) {
      first = r;
      try {
        fail(r, what_, comm_->get());
      } catch (...) {
        error = std::current_exception();
      }
    }
  }
  requests_.clear();
  if (error == nullptr && after_) {
    try {
      after_();
    } catch (...) {
      error = std::current_exception();
    }
  }
  keepAlive_.clear();
  after_ = nullptr;
  // The work is complete before its future is, so a callback of the future sees it complete.
  finish(error);
  done_.store(true, std::memory_order_release);
  if (error == nullptr) {
    future_->markCompleted(c10::IValue(outputs_));
  } else {
    future_->setError(error);
  }
}

bool GcclWork::wait(std::chrono::milliseconds timeout) {
  complete();
  return c10d::Work::wait(timeout);
}

c10::intrusive_ptr<c10::ivalue::Future> GcclWork::getFuture() {
  // Whoever holds the future may never wait on the work: the completion thread completes it.
  if (signal_ != nullptr && !done()) signal_->kick();
  return future_;
}

bool GcclWork::isCompleted() {
  if (signal_ != nullptr && !done()) signal_->kick();
  return c10d::Work::isCompleted();
}

}  // namespace gccl_torch

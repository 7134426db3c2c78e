// The torch.distributed backend "gccl" for CPU tensors.
//
// Its communicator is built from the store torch passes (rank 0 makes a gccl unique id and
// publishes it there), so nothing beyond what init_process_group needs is required. Each call
// issues non-blocking gccl operations on the caller's thread and returns a GcclWork; a
// completion thread completes works in order when a future or a poll asks for it, so futures
// complete without a wait.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "communicator.h"
#include "work.h"

namespace gccl_torch {

class ProcessGroupGccl : public c10d::Backend {
 public:
  ProcessGroupGccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                   std::chrono::milliseconds timeout);
  ~ProcessGroupGccl() override;

  const std::string getBackendName() const override { return "gccl"; }
  int64_t commId() const { return comm_->id(); }
  const std::shared_ptr<Communicator>& communicator() const { return comm_; }
  // Traffic to and from `peer` since the communicator was made: bytes sent, bytes received,
  // messages sent, messages received.
  std::vector<uint64_t> peerCounters(int peer) const;
  void abortCommunicator();

  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                           const c10d::AllreduceOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allreduce_coalesced(
      std::vector<at::Tensor>& tensors, const c10d::AllreduceCoalescedOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> reduce(std::vector<at::Tensor>& tensors,
                                        const c10d::ReduceOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                           std::vector<at::Tensor>& inputs,
                                           const c10d::AllgatherOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> _allgather_base(at::Tensor& output, at::Tensor& input,
                                                 const c10d::AllgatherOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allgather_into_tensor_coalesced(
      std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
      const c10d::AllgatherOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> reduce_scatter(std::vector<at::Tensor>& outputs,
                                                std::vector<std::vector<at::Tensor>>& inputs,
                                                const c10d::ReduceScatterOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> _reduce_scatter_base(
      at::Tensor& output, at::Tensor& input, const c10d::ReduceScatterOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> reduce_scatter_tensor_coalesced(
      std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
      const c10d::ReduceScatterOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> alltoall_base(at::Tensor& output, at::Tensor& input,
                                               std::vector<int64_t>& outputSplitSizes,
                                               std::vector<int64_t>& inputSplitSizes,
                                               const c10d::AllToAllOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> alltoall(std::vector<at::Tensor>& outputs,
                                          std::vector<at::Tensor>& inputs,
                                          const c10d::AllToAllOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> send(std::vector<at::Tensor>& tensors, int dstRank,
                                      int tag) override;
  c10::intrusive_ptr<c10d::Work> recv(std::vector<at::Tensor>& tensors, int srcRank,
                                      int tag) override;
  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions& opts) override;

 private:
  c10::intrusive_ptr<GcclWork> newWork(c10d::OpType type, const std::string& what,
                                       std::vector<at::Tensor> outputs);
  c10::intrusive_ptr<c10d::Work> enqueue(c10::intrusive_ptr<GcclWork> work);
  // One reduction over several tensors (a list of equal tensors, or a coalesced bucket).
  c10::intrusive_ptr<c10d::Work> allreduceTensors(std::vector<at::Tensor>& tensors,
                                                  c10d::ReduceOp op, const std::string& what);
  void completionLoop();

  std::shared_ptr<Communicator> comm_;
  // Works not yet known to be complete, in issue order, under signal_->mutex.
  std::shared_ptr<CompletionSignal> signal_ = std::make_shared<CompletionSignal>();
  std::deque<c10::intrusive_ptr<GcclWork>> queue_;
  std::thread completionThread_;
};

c10::intrusive_ptr<ProcessGroupGccl> createProcessGroupGccl(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, double timeoutSeconds);

}  // namespace gccl_torch

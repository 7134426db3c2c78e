#include "process_group.h"

#include <c10/util/Exception.h>
#include <torch/csrc/utils/pybind.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "tensor_args.h"

namespace gccl_torch {

namespace {

const char* kUniqueIdKey = "gccl/unique_id";

// A contiguous tensor with the contents of `t`: `t` itself when it already is one. Results
// written into a staged copy go back with copyBack.
at::Tensor staged(const at::Tensor& t) {
  return t.is_contiguous() ? t : t.contiguous();
}
void copyBack(const at::Tensor& staging, at::Tensor& t) {
  if (!staging.is_same(t)) t.copy_(staging);
}

void checkSingle(const std::vector<at::Tensor>& tensors, const std::string& what) {
  TORCH_CHECK_VALUE(tensors.size() == 1, "gccl: ", what, ": takes one tensor per call, got ",
                    tensors.size());
}

void checkRank(int rank, int size, const std::string& what, const char* role) {
  TORCH_CHECK_VALUE(rank >= 0 && rank < size, "gccl: ", what, ": ", role, " rank ", rank,
                    " is out of range for a group of ", size);
}

}  // namespace

ProcessGroupGccl::ProcessGroupGccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                   std::chrono::milliseconds timeout)
    : c10d::Backend(rank, size) {
  gcclUniqueId id;
  if (rank == 0) {
    check(gcclGetUniqueId(&id), "gcclGetUniqueId", nullptr);
    std::vector<uint8_t> bytes(sizeof(id.internal));
    std::memcpy(bytes.data(), id.internal, bytes.size());
    store->set(kUniqueIdKey, bytes);
  } else {
    std::vector<uint8_t> bytes = store->get(kUniqueIdKey);
    TORCH_CHECK(bytes.size() == sizeof(id.internal), "gccl: the store holds a unique id of ",
                bytes.size(), " bytes, expected ", sizeof(id.internal));
    std::memcpy(id.internal, bytes.data(), bytes.size());
  }
  // gccl's deadline is for a wait without progress and has a floor of one second. A
  // GCCL_TIMEOUT_MS in the environment wins over torch's timeout (GCCL_CONFIG_UNDEF_INT defers
  // to it), so that a job can be told to notice a dead peer sooner than torch's default.
  int ms = GCCL_CONFIG_UNDEF_INT;
  if (std::getenv("GCCL_TIMEOUT_MS") == nullptr) {
    ms = static_cast<int>(std::clamp<int64_t>(timeout.count(), 1000, INT32_MAX));
  }
  comm_ = createCommunicator(id, rank, size, ms);
  completionThread_ = std::thread([this] { completionLoop(); });
}

ProcessGroupGccl::~ProcessGroupGccl() {
  // Python drops the last reference with the GIL held, and the completion thread may need the
  // GIL to free a finished work's tensors: let go of it while waiting for that thread.
  std::optional<pybind11::gil_scoped_release> noGil;
  if (Py_IsInitialized() && PyGILState_Check()) noGil.emplace();
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    signal_->stopping = true;
  }
  signal_->cv.notify_all();
  completionThread_.join();
}

void ProcessGroupGccl::completionLoop() {
  uint64_t seen = 0;
  for (;;) {
    std::deque<c10::intrusive_ptr<GcclWork>> batch;
    {
      std::unique_lock<std::mutex> lock(signal_->mutex);
      signal_->cv.wait(lock, [&] { return signal_->stopping || signal_->kicks != seen; });
      seen = signal_->kicks;
      batch.swap(queue_);
      if (signal_->stopping && batch.empty()) return;  // everything issued is complete
    }
    for (auto& work : batch)
      work->complete();
  }
}

std::vector<uint64_t> ProcessGroupGccl::peerCounters(int peer) const {
  gcclPeerCounters_t counters = GCCL_PEER_COUNTERS_INITIALIZER;
  check(gcclCommGetPeerCounters(comm_->get(), peer, &counters), "gcclCommGetPeerCounters",
        comm_->get());
  return {counters.bytesSent, counters.bytesReceived, counters.messagesSent,
          counters.messagesReceived};
}

void ProcessGroupGccl::abortCommunicator() {
  comm_->abort();
}

c10::intrusive_ptr<GcclWork> ProcessGroupGccl::newWork(c10d::OpType type, const std::string& what,
                                                       std::vector<at::Tensor> outputs) {
  return c10::make_intrusive<GcclWork>(comm_, rank_, type, what, std::move(outputs));
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::enqueue(c10::intrusive_ptr<GcclWork> work) {
  // Works that callers completed leave the queue here; a queue that still grows (works nobody
  // waits for) wakes the completion thread to release their requests.
  constexpr size_t kMaxPending = 64;
  work->setSignal(signal_);
  bool kick = false;
  // Freed outside the lock: freeing a tensor may take the GIL, whose holder may be kicking.
  std::vector<c10::intrusive_ptr<GcclWork>> finished;
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    while (!queue_.empty() && queue_.front()->done()) {
      finished.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queue_.push_back(work);
    kick = queue_.size() > kMaxPending;
  }
  if (kick) signal_->kick();
  return work;
}

// ---- Reductions ----------------------------------------------------------------------------

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::allreduceTensors(std::vector<at::Tensor>& tensors,
                                                                  c10d::ReduceOp op,
                                                                  const std::string& what) {
  TORCH_CHECK_VALUE(!tensors.empty(), "gccl: ", what, ": no tensors");
  gcclRedOp_t gop = toGcclOp(op, what);
  for (const auto& t : tensors)
    checkCpu(t, what);
  auto work = newWork(c10d::OpType::ALLREDUCE, what, tensors);
  std::vector<std::pair<at::Tensor, at::Tensor>> stagings;
  std::lock_guard<std::mutex> lock(comm_->issueMutex());
  for (auto& t : tensors) {
    gcclDataType_t type = toGcclType(t.scalar_type(), what);
    at::Tensor buf = staged(t);
    gcclRequest_t request = nullptr;
    check(gcclAllReduce(buf.data_ptr(), buf.data_ptr(), buf.numel(), type, gop, comm_->get(),
                        nullptr, &request),
          what, comm_->get());
    work->addRequest(request);
    work->keepAlive(buf);
    stagings.emplace_back(buf, t);
  }
  work->setAfter([stagings]() mutable {
    for (auto& [buf, t] : stagings)
      copyBack(buf, t);
  });
  return enqueue(work);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::allreduce(std::vector<at::Tensor>& tensors,
                                                           const c10d::AllreduceOptions& opts) {
  return allreduceTensors(tensors, opts.reduceOp, "all_reduce");
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::allreduce_coalesced(
    std::vector<at::Tensor>& tensors, const c10d::AllreduceCoalescedOptions& opts) {
  return allreduceTensors(tensors, opts.reduceOp, "all_reduce_coalesced");
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::reduce(std::vector<at::Tensor>& tensors,
                                                        const c10d::ReduceOptions& opts) {
  const std::string what = "reduce";
  checkSingle(tensors, what);
  checkRank(static_cast<int>(opts.rootRank), size_, what, "root");
  at::Tensor& t = tensors[0];
  checkCpu(t, what);
  gcclDataType_t type = toGcclType(t.scalar_type(), what);
  gcclRedOp_t gop = toGcclOp(opts.reduceOp, what);
  at::Tensor buf = staged(t);
  auto work = newWork(c10d::OpType::REDUCE, what, tensors);
  gcclRequest_t request = nullptr;
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    check(gcclReduce(buf.data_ptr(), buf.data_ptr(), buf.numel(), type, gop,
                     static_cast<int>(opts.rootRank), comm_->get(), nullptr, &request),
          what, comm_->get());
  }
  work->addRequest(request);
  work->keepAlive(buf);
  work->setAfter([buf, t]() mutable { copyBack(buf, t); });
  return enqueue(work);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::broadcast(std::vector<at::Tensor>& tensors,
                                                           const c10d::BroadcastOptions& opts) {
  const std::string what = "broadcast";
  checkSingle(tensors, what);
  checkRank(static_cast<int>(opts.rootRank), size_, what, "root");
  TORCH_CHECK_VALUE(opts.rootTensor == 0, "gccl: broadcast: root tensor must be 0");
  at::Tensor& t = tensors[0];
  checkCpu(t, what);
  gcclDataType_t type = toGcclType(t.scalar_type(), what);
  at::Tensor buf = staged(t);
  auto work = newWork(c10d::OpType::BROADCAST, what, tensors);
  gcclRequest_t request = nullptr;
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    check(gcclBroadcast(buf.data_ptr(), buf.data_ptr(), buf.numel(), type,
                        static_cast<int>(opts.rootRank), comm_->get(), nullptr, &request),
          what, comm_->get());
  }
  work->addRequest(request);
  work->keepAlive(buf);
  work->setAfter([buf, t]() mutable { copyBack(buf, t); });
  return enqueue(work);
}

// ---- Gathers and scatters ------------------------------------------------------------------

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::_allgather_base(at::Tensor& output,
                                                                 at::Tensor& input,
                                                                 const c10d::AllgatherOptions&) {
  const std::string what = "all_gather_into_tensor";
  checkCpu(input, what);
  checkCpu(output, what);
  checkSameType(input, output, what);
  gcclDataType_t type = toGcclType(input.scalar_type(), what);
  TORCH_CHECK_VALUE(output.numel() == input.numel() * size_, "gccl: ", what, ": the output holds ",
                    output.numel(), " elements, expected ", size_, " x ", input.numel());
  at::Tensor in = input.contiguous();
  at::Tensor out = staged(output);
  auto work = newWork(c10d::OpType::_ALLGATHER_BASE, what, {output});
  gcclRequest_t request = nullptr;
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    check(gcclAllGather(in.data_ptr(), out.data_ptr(), in.numel(), type, comm_->get(), nullptr,
                        &request),
          what, comm_->get());
  }
  work->addRequest(request);
  work->keepAlive(in);
  work->keepAlive(out);
  work->setAfter([out, output]() mutable { copyBack(out, output); });
  return enqueue(work);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::allgather(
    std::vector<std::vector<at::Tensor>>& outputs, std::vector<at::Tensor>& inputs,
    const c10d::AllgatherOptions&) {
  const std::string what = "all_gather";
  checkSingle(inputs, what);
  TORCH_CHECK_VALUE(outputs.size() == 1, "gccl: ", what, ": takes one output list per call");
  at::Tensor& input = inputs[0];
  checkCpu(input, what);
  gcclDataType_t type = toGcclType(input.scalar_type(), what);
  std::vector<at::Tensor>& list = outputs[0];
  TORCH_CHECK_VALUE(static_cast<int>(list.size()) == size_, "gccl: ", what,
                    ": the output list has ", list.size(), " tensors for a group of ", size_);
  for (const auto& o : list) {
    checkCpu(o, what);
    checkSameType(input, o, what);
    TORCH_CHECK_VALUE(o.numel() == input.numel(), "gccl: ", what, ": an output tensor holds ",
                      o.numel(), " elements, the input ", input.numel(),
                      " (gccl gathers equal sizes)");
  }
  at::Tensor in = input.contiguous();
  at::Tensor flat = at::empty({size_ * in.numel()}, in.options());
  auto work = newWork(c10d::OpType::ALLGATHER, what, list);
  gcclRequest_t request = nullptr;
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    check(gcclAllGather(in.data_ptr(), flat.data_ptr(), in.numel(), type, comm_->get(), nullptr,
                        &request),
          what, comm_->get());
  }
  work->addRequest(request);
  work->keepAlive(in);
  work->setAfter([flat, list]() mutable {
    auto chunks = flat.chunk(static_cast<int64_t>(list.size()));
    for (size_t i = 0; i < list.size(); ++i)
      list[i].copy_(chunks[i].view(list[i].sizes()));
  });
  return enqueue(work);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::allgather_into_tensor_coalesced(
    std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
    const c10d::AllgatherOptions& opts) {
  TORCH_CHECK_VALUE(outputs.size() == inputs.size() && !inputs.empty(),
                    "gccl: all_gather_into_tensor_coalesced: ", inputs.size(), " inputs and ",
                    outputs.size(), " outputs");
  c10::intrusive_ptr<c10d::Work> last;
  // Works complete in issue order, so the last one completes after all the others.
  for (size_t i = 0; i < inputs.size(); ++i)
    last = _allgather_base(outputs[i], inputs[i], opts);
  return last;
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::_reduce_scatter_base(
    at::Tensor& output, at::Tensor& input, const c10d::ReduceScatterOptions& opts) {
  const std::string what = "reduce_scatter_tensor";
  checkCpu(input, what);
  checkCpu(output, what);
  checkSameType(input, output, what);
  gcclDataType_t type = toGcclType(input.scalar_type(), what);
  gcclRedOp_t gop = toGcclOp(opts.reduceOp, what);
  TORCH_CHECK_VALUE(input.numel() == output.numel() * size_, "gccl: ", what, ": the input holds ",
                    input.numel(), " elements, expected ", size_, " x ", output.numel());
  at::Tensor in = input.contiguous();
  at::Tensor out = staged(output);
  auto work = newWork(c10d::OpType::_REDUCE_SCATTER_BASE, what, {output});
  gcclRequest_t request = nullptr;
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    check(gcclReduceScatter(in.data_ptr(), out.data_ptr(), out.numel(), type, gop, comm_->get(),
                            nullptr, &request),
          what, comm_->get());
  }
  work->addRequest(request);
  work->keepAlive(in);
  work->keepAlive(out);
  work->setAfter([out, output]() mutable { copyBack(out, output); });
  return enqueue(work);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::reduce_scatter(
    std::vector<at::Tensor>& outputs, std::vector<std::vector<at::Tensor>>& inputs,
    const c10d::ReduceScatterOptions& opts) {
  const std::string what = "reduce_scatter";
  checkSingle(outputs, what);
  TORCH_CHECK_VALUE(inputs.size() == 1, "gccl: ", what, ": takes one input list per call");
  at::Tensor& output = outputs[0];
  std::vector<at::Tensor>& list = inputs[0];
  TORCH_CHECK_VALUE(static_cast<int>(list.size()) == size_, "gccl: ", what, ": the input list has ",
                    list.size(), " tensors for a group of ", size_);
  std::vector<at::Tensor> flats;
  for (const auto& t : list) {
    checkCpu(t, what);
    checkSameType(output, t, what);
    TORCH_CHECK_VALUE(t.numel() == output.numel(), "gccl: ", what, ": an input tensor holds ",
                      t.numel(), " elements, the output ", output.numel());
    flats.push_back(t.reshape({-1}));
  }
  at::Tensor input = at::cat(flats);
  return _reduce_scatter_base(output, input, opts);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::reduce_scatter_tensor_coalesced(
    std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
    const c10d::ReduceScatterOptions& opts) {
  TORCH_CHECK_VALUE(outputs.size() == inputs.size() && !inputs.empty(),
                    "gccl: reduce_scatter_tensor_coalesced: ", inputs.size(), " inputs and ",
                    outputs.size(), " outputs");
  c10::intrusive_ptr<c10d::Work> last;
  for (size_t i = 0; i < inputs.size(); ++i)
    last = _reduce_scatter_base(outputs[i], inputs[i], opts);
  return last;
}

// ---- All to all (grouped sends and receives) ----------------------------------------------

namespace {

// Element offsets of each rank's block along dimension 0 from split sizes (rows); equal blocks
// when there are no split sizes.
std::vector<int64_t> blockOffsets(const at::Tensor& t, const std::vector<int64_t>& splits, int size,
                                  const std::string& what, const char* side) {
  int64_t rows = t.dim() == 0 ? 1 : t.size(0);
  int64_t rowElems = rows == 0 ? 0 : t.numel() / rows;
  std::vector<int64_t> offsets(size + 1, 0);
  if (splits.empty()) {
    TORCH_CHECK_VALUE(rows % size == 0, "gccl: ", what, ": the ", side, " has ", rows,
                      " rows, not divisible by the group size ", size);
    for (int r = 0; r <= size; ++r)
      offsets[r] = r * (rows / size) * rowElems;
    return offsets;
  }
  TORCH_CHECK_VALUE(static_cast<int>(splits.size()) == size, "gccl: ", what, ": ", splits.size(),
                    " ", side, " split sizes for a group of ", size);
  int64_t sum = 0;
  for (int r = 0; r < size; ++r) {
    TORCH_CHECK_VALUE(splits[r] >= 0, "gccl: ", what, ": negative ", side, " split size");
    offsets[r] = sum * rowElems;
    sum += splits[r];
  }
  TORCH_CHECK_VALUE(sum == rows, "gccl: ", what, ": the ", side, " split sizes add up to ", sum,
                    ", the tensor has ", rows, " rows");
  offsets[size] = sum * rowElems;
  return offsets;
}

}  // namespace

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::alltoall_base(
    at::Tensor& output, at::Tensor& input, std::vector<int64_t>& outputSplitSizes,
    std::vector<int64_t>& inputSplitSizes, const c10d::AllToAllOptions&) {
  const std::string what = "all_to_all_single";
  checkCpu(input, what);
  checkCpu(output, what);
  checkSameType(input, output, what);
  gcclDataType_t type = toGcclType(input.scalar_type(), what);
  auto inOff = blockOffsets(input, inputSplitSizes, size_, what, "input");
  auto outOff = blockOffsets(output, outputSplitSizes, size_, what, "output");
  at::Tensor in = input.contiguous();
  at::Tensor out = staged(output);
  size_t esize = in.element_size();
  auto* inBytes = static_cast<char*>(in.data_ptr());
  auto* outBytes = static_cast<char*>(out.data_ptr());
  auto work = newWork(c10d::OpType::ALLTOALL_BASE, what, {output});
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    // Rank r's own block is a local copy; every other block is one send and one receive, all
    // in one group so that no order of posting can deadlock.
    std::memcpy(
        outBytes + outOff[rank_] * esize, inBytes + inOff[rank_] * esize,
        std::min(inOff[rank_ + 1] - inOff[rank_], outOff[rank_ + 1] - outOff[rank_]) * esize);
    check(gcclGroupStart(), what, comm_->get());
    gcclResult_t r = gcclSuccess;
    for (int peer = 0; peer < size_ && r == gcclSuccess; ++peer) {
      if (peer == rank_) continue;
      gcclRequest_t request = nullptr;
      int64_t sendCount = inOff[peer + 1] - inOff[peer];
      if (sendCount > 0) {
        r = gcclSend(inBytes + inOff[peer] * esize, sendCount, type, peer, comm_->get(), nullptr,
                     &request);
        if (r == gcclSuccess) work->addRequest(request);
      }
      int64_t recvCount = outOff[peer + 1] - outOff[peer];
      if (r == gcclSuccess && recvCount > 0) {
        r = gcclRecv(outBytes + outOff[peer] * esize, recvCount, type, peer, comm_->get(), nullptr,
                     &request);
        if (r == gcclSuccess) work->addRequest(request);
      }
    }
    if (r != gcclSuccess) {
      gcclGroupEnd();
      fail(r, what, comm_->get());
    }
    check(gcclGroupEnd(), what, comm_->get());
  }
  work->keepAlive(in);
  work->keepAlive(out);
  work->setAfter([out, output]() mutable { copyBack(out, output); });
  return enqueue(work);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::alltoall(std::vector<at::Tensor>& outputs,
                                                          std::vector<at::Tensor>& inputs,
                                                          const c10d::AllToAllOptions& opts) {
  const std::string what = "all_to_all";
  TORCH_CHECK_VALUE(
      static_cast<int>(inputs.size()) == size_ && static_cast<int>(outputs.size()) == size_,
      "gccl: ", what, ": ", inputs.size(), " inputs and ", outputs.size(),
      " outputs for a group of ", size_);
  std::vector<at::Tensor> flatIn;
  std::vector<int64_t> inSplits, outSplits;
  for (int r = 0; r < size_; ++r) {
    checkCpu(inputs[r], what);
    checkCpu(outputs[r], what);
    checkSameType(inputs[0], inputs[r], what);
    checkSameType(inputs[0], outputs[r], what);
    flatIn.push_back(inputs[r].reshape({-1}));
    inSplits.push_back(inputs[r].numel());
    outSplits.push_back(outputs[r].numel());
  }
  at::Tensor in = at::cat(flatIn);
  int64_t outTotal = 0;
  for (int64_t n : outSplits)
    outTotal += n;
  at::Tensor out = at::empty({outTotal}, in.options());
  auto work = alltoall_base(out, in, outSplits, inSplits, opts);
  // The grouped exchange fills `out`; scatter it into the output list when it completes.
  auto gw = c10::static_intrusive_pointer_cast<GcclWork>(work);
  auto result = newWork(c10d::OpType::ALLTOALL, what, outputs);
  result->setAfter([gw, out, outputs, outSplits]() mutable {
    gw->wait();
    int64_t offset = 0;
    for (size_t r = 0; r < outputs.size(); ++r) {
      outputs[r].copy_(out.narrow(0, offset, outSplits[r]).view(outputs[r].sizes()));
      offset += outSplits[r];
    }
  });
  return enqueue(result);
}

// ---- Point to point and barrier ------------------------------------------------------------

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::send(std::vector<at::Tensor>& tensors, int dstRank,
                                                      int tag) {
  const std::string what = "send to rank " + std::to_string(dstRank);
  checkSingle(tensors, what);
  checkRank(dstRank, size_, what, "destination");
  TORCH_CHECK_VALUE(tag == 0, "gccl: ", what,
                    ": gccl matches sends and receives in posting "
                    "order and has no tags; tag must be 0, got ",
                    tag);
  TORCH_CHECK_VALUE(dstRank != rank_, "gccl: ", what, ": a rank cannot send to itself");
  at::Tensor& t = tensors[0];
  checkCpu(t, what);
  gcclDataType_t type = toGcclType(t.scalar_type(), what);
  at::Tensor buf = t.contiguous();
  auto work = newWork(c10d::OpType::SEND, what, tensors);
  gcclRequest_t request = nullptr;
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    check(gcclSend(buf.data_ptr(), buf.numel(), type, dstRank, comm_->get(), nullptr, &request),
          what, comm_->get());
  }
  work->addRequest(request);
  work->keepAlive(buf);
  return enqueue(work);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::recv(std::vector<at::Tensor>& tensors, int srcRank,
                                                      int tag) {
  const std::string what = "recv from rank " + std::to_string(srcRank);
  checkSingle(tensors, what);
  checkRank(srcRank, size_, what, "source");
  TORCH_CHECK_VALUE(tag == 0, "gccl: ", what,
                    ": gccl matches sends and receives in posting "
                    "order and has no tags; tag must be 0, got ",
                    tag);
  TORCH_CHECK_VALUE(srcRank != rank_, "gccl: ", what, ": a rank cannot receive from itself");
  at::Tensor& t = tensors[0];
  checkCpu(t, what);
  gcclDataType_t type = toGcclType(t.scalar_type(), what);
  at::Tensor buf = staged(t);
  auto work = newWork(c10d::OpType::RECV, what, tensors);
  gcclRequest_t request = nullptr;
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    check(gcclRecv(buf.data_ptr(), buf.numel(), type, srcRank, comm_->get(), nullptr, &request),
          what, comm_->get());
  }
  work->addRequest(request);
  work->keepAlive(buf);
  work->setAfter([buf, t]() mutable { copyBack(buf, t); });
  return enqueue(work);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupGccl::barrier(const c10d::BarrierOptions&) {
  auto work = newWork(c10d::OpType::BARRIER, "barrier", {});
  gcclRequest_t request = nullptr;
  {
    std::lock_guard<std::mutex> lock(comm_->issueMutex());
    check(gcclBarrier(comm_->get(), nullptr, &request), "barrier", comm_->get());
  }
  work->addRequest(request);
  return enqueue(work);
}

c10::intrusive_ptr<ProcessGroupGccl> createProcessGroupGccl(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, double timeoutSeconds) {
  auto ms = std::chrono::milliseconds(static_cast<int64_t>(timeoutSeconds * 1000));
  return c10::make_intrusive<ProcessGroupGccl>(store, rank, size, ms);
}

}  // namespace gccl_torch

// The TensorFlow ops: gccl's exact collectives, gossip steps, sparse AllReduce and codecs.
//
// Every op that moves data is stateful, so that tf.function's automatic control dependencies
// run them in program order: ranks must issue collectives in the same order, and TensorFlow's
// executor would otherwise pick any order among independent ops. Kernels that wait on peers
// are AsyncOpKernels: ComputeAsync checks the inputs, allocates the outputs and issues the
// non-blocking gccl call (when the communicator's issue mutex is free; otherwise the issue
// itself goes to the communicator's completion thread); the completion thread waits for the
// request (bounded by the communicator's timeout) and calls `done`. Blocking composites
// (sparse AllReduce, pairwise exchanges) run on that thread too. So no TensorFlow thread waits
// on a peer.
#include <tensorflow/core/framework/common_shape_fns.h>
#include <tensorflow/core/framework/op.h>
#include <tensorflow/core/framework/op_kernel.h>
#include <tensorflow/core/framework/shape_inference.h>
#include <tensorflow/core/framework/tensor.h>

#include <cstring>
#include <string>
#include <vector>

#include "runtime.h"

namespace gccl_tf {
namespace {

using tensorflow::AsyncOpKernel;
using tensorflow::DataType;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

// ---- Types and attributes -----------------------------------------------------------------------

const char* const kAllTypes =
    "T: {half, bfloat16, float, double, int8, uint8, int32, uint32, int64, uint64}";
const char* const kFloatTypes = "T: {half, bfloat16, float, double}";

bool gcclTypeOf(DataType t, gcclDataType_t* out) {
  switch (t) {
    case tensorflow::DT_HALF:
      *out = gcclFloat16;
      return true;
    case tensorflow::DT_BFLOAT16:
      *out = gcclBfloat16;
      return true;
    case tensorflow::DT_FLOAT:
      *out = gcclFloat32;
      return true;
    case tensorflow::DT_DOUBLE:
      *out = gcclFloat64;
      return true;
    case tensorflow::DT_INT8:
      *out = gcclInt8;
      return true;
    case tensorflow::DT_UINT8:
      *out = gcclUint8;
      return true;
    case tensorflow::DT_INT32:
      *out = gcclInt32;
      return true;
    case tensorflow::DT_UINT32:
      *out = gcclUint32;
      return true;
    case tensorflow::DT_INT64:
      *out = gcclInt64;
      return true;
    case tensorflow::DT_UINT64:
      *out = gcclUint64;
      return true;
    default:
      return false;
  }
}

gcclRedOp_t reductionOf(const std::string& name) {
  if (name == "sum") return gcclSum;
  if (name == "avg") return gcclAvg;
  if (name == "min") return gcclMin;
  if (name == "max") return gcclMax;
  return gcclProd;  // the attribute's allowed values leave only "prod"
}

// The codec attributes every compressing op takes (defaults: no compression).
#define GCCL_CODEC_ATTRS                                                                 \
  Attr("codec: {'none', 'float16', 'bfloat16', 'quantize', 'lattice', 'topk'} = 'none'") \
      .Attr("bits: int = 8")                                                             \
      .Attr("bucket: int = 1024")                                                        \
      .Attr("rounding: {'nearest', 'stochastic'} = 'nearest'")                           \
      .Attr("seed: int = 0")                                                             \
      .Attr("lattice_step: float = 0.0")                                                 \
      .Attr("topk_count: int = 0")                                                       \
      .Attr("topk_fraction: float = 0.01")

absl::Status codecFromAttrs(OpKernelConstruction* c, gcclCodecConfig_t* config) {
  std::string codec, rounding;
  int bits = 0;
  int64_t bucket = 0, seed = 0, topkCount = 0;
  float latticeStep = 0, topkFraction = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("codec", &codec));
  TF_RETURN_IF_ERROR(c->GetAttr("bits", &bits));
  TF_RETURN_IF_ERROR(c->GetAttr("bucket", &bucket));
  TF_RETURN_IF_ERROR(c->GetAttr("rounding", &rounding));
  TF_RETURN_IF_ERROR(c->GetAttr("seed", &seed));
  TF_RETURN_IF_ERROR(c->GetAttr("lattice_step", &latticeStep));
  TF_RETURN_IF_ERROR(c->GetAttr("topk_count", &topkCount));
  TF_RETURN_IF_ERROR(c->GetAttr("topk_fraction", &topkFraction));
  return makeCodec(codec, bits, bucket, rounding, seed, latticeStep, topkCount, topkFraction,
                   config);
}

absl::Status scalarOf(OpKernelContext* ctx, int index, const char* name, const std::string& op) {
  const Tensor& t = ctx->input(index);
  if (!tensorflow::TensorShapeUtils::IsScalar(t.shape())) {
    return absl::InvalidArgumentError("gccl: " + op + ": " + name +
                                      " must be a scalar, got shape " + t.shape().DebugString());
  }
  return absl::OkStatus();
}

// ---- The asynchronous base ---------------------------------------------------------------------

class CommOp : public AsyncOpKernel {
 public:
  CommOp(OpKernelConstruction* c, std::string what) : AsyncOpKernel(c), what_(std::move(what)) {
    OP_REQUIRES_OK(c, c->GetAttr("comm", &commId_));
  }

 protected:
  using Issue = std::function<gcclResult_t(gcclComm_t, gcclRequest_t*)>;
  using Finish = std::function<void()>;

  // The communicator, or null with the context's status set and `done` called.
  std::shared_ptr<Communicator> communicator(OpKernelContext* ctx, const DoneCallback& done) {
    absl::Status status;
    auto c = lookupCommunicator(commId_, &status);
    if (c == nullptr) {
      ctx->SetStatus(status);
      done();
    }
    return c;
  }

  // Issues a non-blocking call and completes it on the communicator's thread; `finish` runs
  // there after a successful wait, before `done`.
  void launch(OpKernelContext* ctx, DoneCallback done, const std::shared_ptr<Communicator>& c,
              Issue issue, Finish finish = {}) {
    gcclComm_t comm = c->get();
    std::string what = what_;
    auto complete = [ctx, done, comm, what, finish](gcclRequest_t request) {
      gcclResult_t r = gcclWait(request);
      if (r != gcclSuccess) {
        ctx->SetStatus(gcclStatus(r, what, comm));
      } else if (finish) {
        finish();
      }
      done();
    };
    std::unique_lock<std::mutex> lock(c->issueMutex(), std::try_to_lock);
    if (lock.owns_lock()) {
      gcclRequest_t request = nullptr;
      gcclResult_t r = issue(comm, &request);
      if (r != gcclSuccess) {
        ctx->SetStatus(gcclStatus(r, what, comm));
        lock.unlock();
        done();
        return;
      }
      lock.unlock();
      c->post([complete, request] { complete(request); });
      return;
    }
    // A blocking composite holds the communicator: issue after it, on its thread.
    std::mutex* mutex = &c->issueMutex();
    c->post([ctx, done, comm, what, issue, complete, mutex] {
      gcclRequest_t request = nullptr;
      gcclResult_t r;
      {
        std::lock_guard<std::mutex> guard(*mutex);
        r = issue(comm, &request);
        if (r != gcclSuccess) ctx->SetStatus(gcclStatus(r, what, comm));
      }
      if (r != gcclSuccess) {
        done();
        return;
      }
      complete(request);
    });
  }

  // Runs a blocking gccl composite on the communicator's thread, holding its issue mutex.
  void runBlocking(OpKernelContext* ctx, DoneCallback done, const std::shared_ptr<Communicator>& c,
                   std::function<gcclResult_t(gcclComm_t)> call) {
    gcclComm_t comm = c->get();
    std::mutex* mutex = &c->issueMutex();
    std::string what = what_;
    c->post([ctx, done, comm, mutex, what, call] {
      {
        std::lock_guard<std::mutex> guard(*mutex);
        gcclResult_t r = call(comm);
        if (r != gcclSuccess) ctx->SetStatus(gcclStatus(r, what, comm));
      }
      done();
    });
  }

  absl::Status typeOf(DataType t, gcclDataType_t* out) const {
    if (gcclTypeOf(t, out)) return absl::OkStatus();
    return absl::InvalidArgumentError("gccl: " + what_ + ": unsupported dtype " +
                                      tensorflow::DataTypeString(t));
  }

  const std::string what_;
  int64_t commId_ = 0;
};

// ---- AllReduce ----------------------------------------------------------------------------------

REGISTER_OP("GcclAllReduce")
    .Input("input: T")
    .Output("output: T")
    .Attr(kAllTypes)
    .Attr("reduction: {'sum', 'avg', 'min', 'max', 'prod'}")
    .Attr("comm: int")
    .SetIsStateful()
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape)
    .Doc("The element-wise reduction of `input` over all ranks (gcclAllReduce).");

class AllReduceOp : public CommOp {
 public:
  explicit AllReduceOp(OpKernelConstruction* c) : CommOp(c, "all_reduce") {
    std::string reduction;
    OP_REQUIRES_OK(c, c->GetAttr("reduction", &reduction));
    op_ = reductionOf(reduction);
  }
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& in = ctx->input(0);
    gcclDataType_t type;
    OP_REQUIRES_OK_ASYNC(ctx, typeOf(in.dtype(), &type), done);
    Tensor* out = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->forward_input_or_allocate_output({0}, 0, in.shape(), &out),
                         done);
    auto c = communicator(ctx, done);
    if (c == nullptr) return;
    const void* send = in.tensor_data().data();
    void* recv = const_cast<char*>(out->tensor_data().data());
    size_t count = in.NumElements();
    gcclRedOp_t op = op_;
    launch(ctx, std::move(done), c, [=](gcclComm_t comm, gcclRequest_t* request) {
      return gcclAllReduce(send, recv, count, type, op, comm, nullptr, request);
    });
  }

 private:
  gcclRedOp_t op_ = gcclSum;
};
REGISTER_KERNEL_BUILDER(Name("GcclAllReduce").Device(tensorflow::DEVICE_CPU), AllReduceOp);

// ---- Broadcast ----------------------------------------------------------------------------------

REGISTER_OP("GcclBroadcast")
    .Input("input: T")
    .Output("output: T")
    .Attr(kAllTypes)
    .Attr("root: int")
    .Attr("comm: int")
    .SetIsStateful()
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape)
    .Doc("The root rank's `input` on every rank (gcclBroadcast); all shapes must be equal.");

class BroadcastOp : public CommOp {
 public:
  explicit BroadcastOp(OpKernelConstruction* c) : CommOp(c, "broadcast") {
    OP_REQUIRES_OK(c, c->GetAttr("root", &root_));
  }
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& in = ctx->input(0);
    gcclDataType_t type;
    OP_REQUIRES_OK_ASYNC(ctx, typeOf(in.dtype(), &type), done);
    Tensor* out = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->forward_input_or_allocate_output({0}, 0, in.shape(), &out),
                         done);
    auto c = communicator(ctx, done);
    if (c == nullptr) return;
    OP_REQUIRES_ASYNC(
        ctx, root_ >= 0 && root_ < c->size(),
        absl::InvalidArgumentError("gccl: broadcast: root " + std::to_string(root_) +
                                   " is not a rank of 0.." + std::to_string(c->size() - 1)),
        done);
    const void* send = in.tensor_data().data();
    void* recv = const_cast<char*>(out->tensor_data().data());
    size_t count = in.NumElements();
    int root = root_;
    launch(ctx, std::move(done), c, [=](gcclComm_t comm, gcclRequest_t* request) {
      return gcclBroadcast(send, recv, count, type, root, comm, nullptr, request);
    });
  }

 private:
  int root_ = 0;
};
REGISTER_KERNEL_BUILDER(Name("GcclBroadcast").Device(tensorflow::DEVICE_CPU), BroadcastOp);

// ---- AllGather and ReduceScatter (along the first dimension) ------------------------------------

absl::Status firstDimUnknown(InferenceContext* c) {
  ShapeHandle in = c->input(0);
  if (!c->RankKnown(in)) {
    c->set_output(0, c->UnknownShape());
  } else if (c->Rank(in) == 0) {
    c->set_output(0, c->Vector(c->UnknownDim()));
  } else {
    ShapeHandle out;
    TF_RETURN_IF_ERROR(c->ReplaceDim(in, 0, c->UnknownDim(), &out));
    c->set_output(0, out);
  }
  return absl::OkStatus();
}

REGISTER_OP("GcclAllGather")
    .Input("input: T")
    .Output("output: T")
    .Attr(kAllTypes)
    .Attr("comm: int")
    .SetIsStateful()
    .SetShapeFn(firstDimUnknown)
    .Doc(
        "Every rank's `input`, concatenated in rank order along the first dimension "
        "(a scalar counts as a vector of one).");

class AllGatherOp : public CommOp {
 public:
  explicit AllGatherOp(OpKernelConstruction* c) : CommOp(c, "all_gather") {}
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& in = ctx->input(0);
    gcclDataType_t type;
    OP_REQUIRES_OK_ASYNC(ctx, typeOf(in.dtype(), &type), done);
    auto c = communicator(ctx, done);
    if (c == nullptr) return;
    TensorShape shape = in.shape();
    if (shape.dims() == 0) shape.AddDim(1);
    shape.set_dim(0, shape.dim_size(0) * c->size());
    Tensor* out = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(0, shape, &out), done);
    const void* send = in.tensor_data().data();
    void* recv = const_cast<char*>(out->tensor_data().data());
    size_t count = in.NumElements();
    launch(ctx, std::move(done), c, [=](gcclComm_t comm, gcclRequest_t* request) {
      return gcclAllGather(send, recv, count, type, comm, nullptr, request);
    });
  }
};
REGISTER_KERNEL_BUILDER(Name("GcclAllGather").Device(tensorflow::DEVICE_CPU), AllGatherOp);

REGISTER_OP("GcclReduceScatter")
    .Input("input: T")
    .Output("output: T")
    .Attr(kAllTypes)
    .Attr("reduction: {'sum', 'avg', 'min', 'max', 'prod'}")
    .Attr("comm: int")
    .SetIsStateful()
    .SetShapeFn(firstDimUnknown)
    .Doc(
        "Block r (of the first dimension cut into nranks blocks) of the reduction over ranks, "
        "on rank r.");

class ReduceScatterOp : public CommOp {
 public:
  explicit ReduceScatterOp(OpKernelConstruction* c) : CommOp(c, "reduce_scatter") {
    std::string reduction;
    OP_REQUIRES_OK(c, c->GetAttr("reduction", &reduction));
    op_ = reductionOf(reduction);
  }
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& in = ctx->input(0);
    gcclDataType_t type;
    OP_REQUIRES_OK_ASYNC(ctx, typeOf(in.dtype(), &type), done);
    auto c = communicator(ctx, done);
    if (c == nullptr) return;
    OP_REQUIRES_ASYNC(ctx, in.dims() >= 1 && in.dim_size(0) % c->size() == 0,
                      absl::InvalidArgumentError(
                          "gccl: reduce_scatter: the first dimension of the input (shape " +
                          in.shape().DebugString() + ") must be a multiple of the " +
                          std::to_string(c->size()) + " ranks"),
                      done);
    TensorShape shape = in.shape();
    shape.set_dim(0, shape.dim_size(0) / c->size());
    Tensor* out = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(0, shape, &out), done);
    const void* send = in.tensor_data().data();
    void* recv = const_cast<char*>(out->tensor_data().data());
    size_t count = out->NumElements();
    gcclRedOp_t op = op_;
    launch(ctx, std::move(done), c, [=](gcclComm_t comm, gcclRequest_t* request) {
      return gcclReduceScatter(send, recv, count, type, op, comm, nullptr, request);
    });
  }

 private:
  gcclRedOp_t op_ = gcclSum;
};
REGISTER_KERNEL_BUILDER(Name("GcclReduceScatter").Device(tensorflow::DEVICE_CPU), ReduceScatterOp);

// ---- Gossip steps
// ---------------------------------------------------------------------------------

class GossipOp : public CommOp {
 public:
  GossipOp(OpKernelConstruction* c, std::string what) : CommOp(c, std::move(what)) {
    OP_REQUIRES_OK(c, c->GetAttr("topology", &topologyId_));
    OP_REQUIRES_OK(c, codecFromAttrs(c, &codec_));
  }

 protected:
  // The topology, checked against the communicator's size; null with the status set and `done`
  // called otherwise.
  std::shared_ptr<Topology> topology(OpKernelContext* ctx, const DoneCallback& done,
                                     const Communicator& c) {
    absl::Status status;
    auto t = lookupTopology(topologyId_, &status);
    if (t != nullptr && t->nranks != c.size()) {
      status = absl::InvalidArgumentError("gccl: " + what_ + ": the topology has " +
                                          std::to_string(t->nranks) + " ranks, the communicator " +
                                          std::to_string(c.size()));
      t = nullptr;
    }
    if (t == nullptr) {
      ctx->SetStatus(status);
      done();
    }
    return t;
  }
  // The options of a compressed step (null: the plain call), kept alive by the closure that
  // holds the returned pointer.
  std::shared_ptr<const gcclGossipOptions_t> options() const {
    if (codec_.codec == gcclCodecNone) return nullptr;
    auto holder = std::make_shared<gccl_plugin::GossipCodecOptions>();
    holder->codec = codec_;
    return std::shared_ptr<const gcclGossipOptions_t>(holder, holder->get());
  }

  int64_t topologyId_ = 0;
  gcclCodecConfig_t codec_ = GCCL_CODEC_CONFIG_INITIALIZER;
};

REGISTER_OP("GcclPushSum")
    .Input("x: T")
    .Input("ps_weight: double")
    .Input("step: int64")
    .Output("x_out: T")
    .Output("ps_weight_out: double")
    .Attr(kFloatTypes)
    .Attr("comm: int")
    .Attr("topology: int")
    .GCCL_CODEC_ATTRS.SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(
        "One PushSum (SGP) step of `topology` at `step` on x and its push-sum weight "
        "(gcclPushSum, gcclPushSumEx with a codec).");

class PushSumOp : public GossipOp {
 public:
  explicit PushSumOp(OpKernelConstruction* c) : GossipOp(c, "push_sum") {}
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& x = ctx->input(0);
    gcclDataType_t type;
    OP_REQUIRES_OK_ASYNC(ctx, typeOf(x.dtype(), &type), done);
    OP_REQUIRES_OK_ASYNC(ctx, scalarOf(ctx, 1, "ps_weight", what_), done);
    OP_REQUIRES_OK_ASYNC(ctx, scalarOf(ctx, 2, "step", what_), done);
    double weight = ctx->input(1).scalar<double>()();
    int64_t step = ctx->input(2).scalar<int64_t>()();
    OP_REQUIRES_ASYNC(ctx, step >= 0,
                      absl::InvalidArgumentError("gccl: push_sum: step must be >= 0, got " +
                                                 std::to_string(step)),
                      done);
    auto c = communicator(ctx, done);
    if (c == nullptr) return;
    auto t = topology(ctx, done, *c);
    if (t == nullptr) return;
    Tensor* xOut = nullptr;
    Tensor* wOut = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(0, x.shape(), &xOut), done);
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(1, TensorShape({}), &wOut), done);
    std::memcpy(const_cast<char*>(xOut->tensor_data().data()), x.tensor_data().data(),
                x.TotalBytes());
    double* w = &wOut->scalar<double>()();
    *w = weight;
    void* data = const_cast<char*>(xOut->tensor_data().data());
    size_t count = x.NumElements();
    auto opts = options();
    gcclTopology_t topo = t->topo;
    launch(ctx, std::move(done), c, [=](gcclComm_t comm, gcclRequest_t* request) {
      (void)t;  // keeps the topology alive until the step completes
      return gcclPushSumEx(data, count, type, w, topo, static_cast<uint64_t>(step), opts.get(),
                           comm, nullptr, request);
    });
  }
};
REGISTER_KERNEL_BUILDER(Name("GcclPushSum").Device(tensorflow::DEVICE_CPU), PushSumOp);

REGISTER_OP("GcclNeighborAverage")
    .Input("x: T")
    .Input("step: int64")
    .Output("output: T")
    .Attr(kFloatTypes)
    .Attr("comm: int")
    .Attr("topology: int")
    .GCCL_CODEC_ATTRS.SetIsStateful()
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape)
    .Doc(
        "Neighbour averaging (D-PSGD) on `topology` at `step` (gcclNeighborAverage, "
        "gcclNeighborAverageEx with a codec).");

class NeighborAverageOp : public GossipOp {
 public:
  explicit NeighborAverageOp(OpKernelConstruction* c) : GossipOp(c, "neighbor_average") {}
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& x = ctx->input(0);
    gcclDataType_t type;
    OP_REQUIRES_OK_ASYNC(ctx, typeOf(x.dtype(), &type), done);
    OP_REQUIRES_OK_ASYNC(ctx, scalarOf(ctx, 1, "step", what_), done);
    int64_t step = ctx->input(1).scalar<int64_t>()();
    OP_REQUIRES_ASYNC(ctx, step >= 0,
                      absl::InvalidArgumentError("gccl: neighbor_average: step must be >= 0, got " +
                                                 std::to_string(step)),
                      done);
    auto c = communicator(ctx, done);
    if (c == nullptr) return;
    auto t = topology(ctx, done, *c);
    if (t == nullptr) return;
    Tensor* out = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(0, x.shape(), &out), done);
    const void* send = x.tensor_data().data();
    void* recv = const_cast<char*>(out->tensor_data().data());
    size_t count = x.NumElements();
    auto opts = options();
    gcclTopology_t topo = t->topo;
    launch(ctx, std::move(done), c, [=](gcclComm_t comm, gcclRequest_t* request) {
      (void)t;
      return gcclNeighborAverageEx(send, recv, count, type, topo, static_cast<uint64_t>(step),
                                   opts.get(), comm, nullptr, request);
    });
  }
};
REGISTER_KERNEL_BUILDER(Name("GcclNeighborAverage").Device(tensorflow::DEVICE_CPU),
                        NeighborAverageOp);

// ---- Pairwise gossip
// -----------------------------------------------------------------------------

REGISTER_OP("GcclPairwiseExchange")
    .Input("x: T")
    .Input("step: int64")
    .Output("output: T")
    .Output("partner: int32")
    .Attr("T: {float, double}")
    .Attr("state: int")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(
        "Pairwise gossip (SwarmSGD): folds the local change of x since the last exchange into "
        "the registered model, averages it with a random neighbour, returns the result.");

template <typename T>
void addDifference(char* model, const char* x, const char* snapshot, size_t count) {
  T* m = reinterpret_cast<T*>(model);
  const T* a = reinterpret_cast<const T*>(x);
  const T* s = reinterpret_cast<const T*>(snapshot);
  for (size_t i = 0; i < count; ++i)
    m[i] += a[i] - s[i];
}

class PairwiseExchangeOp : public AsyncOpKernel {
 public:
  explicit PairwiseExchangeOp(OpKernelConstruction* c) : AsyncOpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("state", &stateId_));
  }
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    absl::Status status;
    auto p = lookupPairwise(stateId_, &status);
    OP_REQUIRES_OK_ASYNC(ctx, status, done);
    const Tensor& x = ctx->input(0);
    gcclDataType_t type;
    OP_REQUIRES_ASYNC(ctx, gcclTypeOf(x.dtype(), &type) && type == p->type,
                      absl::InvalidArgumentError("gccl: pairwise_exchange: x is " +
                                                 tensorflow::DataTypeString(x.dtype()) +
                                                 ", the registered model " +
                                                 (p->type == gcclFloat32 ? "float32" : "float64")),
                      done);
    OP_REQUIRES_ASYNC(ctx, static_cast<size_t>(x.NumElements()) == p->count,
                      absl::InvalidArgumentError(
                          "gccl: pairwise_exchange: x has " + std::to_string(x.NumElements()) +
                          " elements, the registered model " + std::to_string(p->count)),
                      done);
    OP_REQUIRES_OK_ASYNC(ctx, scalarOf(ctx, 1, "step", "pairwise_exchange"), done);
    int64_t step = ctx->input(1).scalar<int64_t>()();
    OP_REQUIRES_ASYNC(
        ctx, step >= 0,
        absl::InvalidArgumentError("gccl: pairwise_exchange: step must be >= 0, got " +
                                   std::to_string(step)),
        done);
    Tensor* out = nullptr;
    Tensor* partner = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(0, x.shape(), &out), done);
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(1, TensorShape({}), &partner), done);
    const char* in = x.tensor_data().data();
    char* result = const_cast<char*>(out->tensor_data().data());
    int* partnerRank = &partner->scalar<int32_t>()();
    Pairwise* state = p.get();
    size_t bytes = x.TotalBytes();
    // Runs on the communicator's thread; `p` (captured) keeps the state alive until then.
    p->comm->post([ctx, done, p, state, in, result, partnerRank, bytes, step] {
      gcclComm_t comm = state->comm->get();
      gcclResult_t r = gcclPairwiseLock(state->pairwise);
      if (r == gcclSuccess) {
        if (state->type == gcclFloat32) {
          addDifference<float>(state->model.get(), in, state->snapshot.get(), state->count);
        } else {
          addDifference<double>(state->model.get(), in, state->snapshot.get(), state->count);
        }
        r = gcclPairwiseUnlock(state->pairwise);
      }
      if (r == gcclSuccess) {
        std::lock_guard<std::mutex> guard(state->comm->issueMutex());
        r = gcclPairwiseExchange(state->pairwise, static_cast<uint64_t>(step), partnerRank);
      }
      if (r == gcclSuccess) {
        r = gcclPairwiseLock(state->pairwise);
        if (r == gcclSuccess) {
          std::memcpy(result, state->model.get(), bytes);
          std::memcpy(state->snapshot.get(), state->model.get(), bytes);
          r = gcclPairwiseUnlock(state->pairwise);
        }
      }
      if (r != gcclSuccess) ctx->SetStatus(gcclStatus(r, "pairwise_exchange", comm));
      done();
    });
  }

 private:
  int64_t stateId_ = 0;
};
REGISTER_KERNEL_BUILDER(Name("GcclPairwiseExchange").Device(tensorflow::DEVICE_CPU),
                        PairwiseExchangeOp);

// ---- Sparse AllReduce
// -----------------------------------------------------------------------------

REGISTER_OP("GcclSparseAllReduce")
    .Input("indices: int64")
    .Input("values: T")
    .Output("output: T")
    .Attr(kAllTypes)
    .Attr("count: int >= 0")
    .Attr("reduction: {'sum', 'avg'}")
    .Attr("comm: int")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      int64_t count = 0;
      TF_RETURN_IF_ERROR(c->GetAttr("count", &count));
      c->set_output(0, c->Vector(count));
      return absl::OkStatus();
    })
    .Doc(
        "The sum (or average) over ranks of sparse vectors of `count` elements, each given as "
        "ascending distinct `indices` and their `values`; the dense result "
        "(gcclSparseAllReduce).");

class SparseAllReduceOp : public CommOp {
 public:
  explicit SparseAllReduceOp(OpKernelConstruction* c) : CommOp(c, "sparse_all_reduce") {
    std::string reduction;
    OP_REQUIRES_OK(c, c->GetAttr("reduction", &reduction));
    OP_REQUIRES_OK(c, c->GetAttr("count", &count_));
    op_ = reductionOf(reduction);
    OP_REQUIRES(c, count_ <= (int64_t{1} << 32),
                absl::InvalidArgumentError("gccl: sparse_all_reduce: count " +
                                           std::to_string(count_) + " is above 2^32"));
  }
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& indices = ctx->input(0);
    const Tensor& values = ctx->input(1);
    gcclDataType_t type;
    OP_REQUIRES_OK_ASYNC(ctx, typeOf(values.dtype(), &type), done);
    OP_REQUIRES_ASYNC(
        ctx, indices.dims() == 1 && values.dims() == 1 && indices.dim_size(0) == values.dim_size(0),
        absl::InvalidArgumentError("gccl: sparse_all_reduce: indices and values must be vectors "
                                   "of the same length, got shapes " +
                                   indices.shape().DebugString() + " and " +
                                   values.shape().DebugString()),
        done);
    auto c = communicator(ctx, done);
    if (c == nullptr) return;
    size_t nnz = indices.NumElements();
    auto idx = std::make_shared<std::vector<uint32_t>>(nnz);
    auto in = indices.flat<int64_t>();
    for (size_t i = 0; i < nnz; ++i) {
      OP_REQUIRES_ASYNC(
          ctx, in(i) >= 0 && in(i) < count_,
          absl::InvalidArgumentError("gccl: sparse_all_reduce: indices[" + std::to_string(i) +
                                     "] = " + std::to_string(in(i)) + " is outside 0.." +
                                     std::to_string(count_ - 1)),
          done);
      (*idx)[i] = static_cast<uint32_t>(in(i));
    }
    Tensor* out = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(0, TensorShape({count_}), &out), done);
    const void* vals = values.tensor_data().data();
    void* dense = const_cast<char*>(out->tensor_data().data());
    size_t count = static_cast<size_t>(count_);
    gcclRedOp_t op = op_;
    runBlocking(ctx, std::move(done), c, [=](gcclComm_t comm) {
      return gcclSparseAllReduce(idx->data(), vals, nnz, count, type, op, dense, comm, nullptr);
    });
  }

 private:
  int64_t count_ = 0;
  gcclRedOp_t op_ = gcclSum;
};
REGISTER_KERNEL_BUILDER(Name("GcclSparseAllReduce").Device(tensorflow::DEVICE_CPU),
                        SparseAllReduceOp);

REGISTER_OP("GcclTopKAllReduce")
    .Input("grad: float")
    .Input("residual: float")
    .Output("output: float")
    .Output("residual_out: float")
    .Output("sent: int64")
    .Attr("reduction: {'sum', 'avg'}")
    .Attr("comm: int")
    .GCCL_CODEC_ATTRS.SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(1));
      c->set_output(2, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(
        "Top-k gradient compression with error feedback (gcclTopKAllReduce): the top k of "
        "grad + residual from every rank, summed or averaged into a dense tensor; the new "
        "residual keeps what this rank did not send; sent: how many entries it sent.");

class TopKAllReduceOp : public CommOp {
 public:
  explicit TopKAllReduceOp(OpKernelConstruction* c) : CommOp(c, "top_k_all_reduce") {
    std::string reduction;
    OP_REQUIRES_OK(c, c->GetAttr("reduction", &reduction));
    op_ = reductionOf(reduction);
    OP_REQUIRES_OK(c, codecFromAttrs(c, &codec_));
    OP_REQUIRES(c, codec_.codec == gcclCodecTopK,
                absl::InvalidArgumentError("gccl: top_k_all_reduce: the codec must be topk"));
  }
  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& grad = ctx->input(0);
    const Tensor& residual = ctx->input(1);
    OP_REQUIRES_ASYNC(
        ctx, residual.NumElements() == grad.NumElements(),
        absl::InvalidArgumentError("gccl: top_k_all_reduce: the residual has " +
                                   std::to_string(residual.NumElements()) +
                                   " elements, the gradient " + std::to_string(grad.NumElements())),
        done);
    auto c = communicator(ctx, done);
    if (c == nullptr) return;
    Tensor* out = nullptr;
    Tensor* residualOut = nullptr;
    Tensor* sent = nullptr;
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(0, grad.shape(), &out), done);
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(1, residual.shape(), &residualOut), done);
    OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(2, TensorShape({}), &sent), done);
    std::memcpy(const_cast<char*>(residualOut->tensor_data().data()), residual.tensor_data().data(),
                residual.TotalBytes());
    const float* g = grad.flat<float>().data();
    float* r = residualOut->flat<float>().data();
    float* dense = out->flat<float>().data();
    int64_t* nnz = &sent->scalar<int64_t>()();
    size_t count = grad.NumElements();
    gcclRedOp_t op = op_;
    auto codec = std::make_shared<gcclCodecConfig_t>(codec_);
    runBlocking(ctx, std::move(done), c, [=](gcclComm_t comm) {
      size_t sentNnz = 0;
      gcclResult_t result =
          gcclTopKAllReduce(g, r, count, codec.get(), op, dense, &sentNnz, comm, nullptr);
      *nnz = static_cast<int64_t>(sentNnz);
      return result;
    });
  }

 private:
  gcclRedOp_t op_ = gcclSum;
  gcclCodecConfig_t codec_ = GCCL_CODEC_CONFIG_INITIALIZER;
};
REGISTER_KERNEL_BUILDER(Name("GcclTopKAllReduce").Device(tensorflow::DEVICE_CPU), TopKAllReduceOp);

// ---- Codecs (local) ---------------------------------------------------------------------------

REGISTER_OP("GcclCodecEncode")
    .Input("x: T")
    .Input("residual: float")
    .Output("encoded: uint8")
    .Output("residual_out: float")
    .Attr(kFloatTypes)
    .GCCL_CODEC_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->Vector(c->UnknownDim()));
      c->set_output(1, c->input(1));
      return absl::OkStatus();
    })
    .Doc(
        "x's encoding with the codec (gcclCodecEncode). residual: top-k's error-feedback "
        "buffer (as many float32 elements as x; empty for the other codecs).");

class CodecEncodeOp : public OpKernel {
 public:
  explicit CodecEncodeOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, codecFromAttrs(c, &codec_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& residual = ctx->input(1);
    gcclDataType_t type;
    OP_REQUIRES(ctx, gcclTypeOf(x.dtype(), &type),
                absl::InvalidArgumentError("gccl: codec_encode: unsupported dtype " +
                                           tensorflow::DataTypeString(x.dtype())));
    size_t count = x.NumElements();
    bool topk = codec_.codec == gcclCodecTopK;
    OP_REQUIRES(
        ctx,
        topk ? static_cast<size_t>(residual.NumElements()) == count : residual.NumElements() == 0,
        absl::InvalidArgumentError(
            topk ? "gccl: codec_encode: top-k needs a residual of " + std::to_string(count) +
                       " float32 elements, got " + std::to_string(residual.NumElements())
                 : std::string("gccl: codec_encode: only top-k takes a residual")));
    size_t bytes = 0;
    OP_REQUIRES_OK(ctx, gcclStatus(gcclCodecEncodedBytes(&codec_, count, type, &bytes),
                                   "codec_encode", nullptr));
    Tensor encoded(tensorflow::DT_UINT8, TensorShape({static_cast<int64_t>(bytes)}));
    Tensor* residualOut = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, residual.shape(), &residualOut));
    if (residual.NumElements() > 0) {
      std::memcpy(const_cast<char*>(residualOut->tensor_data().data()),
                  residual.tensor_data().data(), residual.TotalBytes());
    }
    size_t written = 0;
    OP_REQUIRES_OK(
        ctx,
        gcclStatus(gcclCodecEncode(&codec_, x.tensor_data().data(), count, type,
                                   const_cast<char*>(encoded.tensor_data().data()), bytes, &written,
                                   topk ? residualOut->flat<float>().data() : nullptr),
                   "codec_encode", nullptr));
    ctx->set_output(0, encoded.Slice(0, static_cast<int64_t>(written)));
  }

 private:
  gcclCodecConfig_t codec_ = GCCL_CODEC_CONFIG_INITIALIZER;
};
REGISTER_KERNEL_BUILDER(Name("GcclCodecEncode").Device(tensorflow::DEVICE_CPU), CodecEncodeOp);

REGISTER_OP("GcclCodecDecode")
    .Input("encoded: uint8")
    .Input("reference: T")
    .Output("output: T")
    .Attr(kFloatTypes)
    .Attr("count: int >= 0")
    .GCCL_CODEC_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      int64_t count = 0;
      TF_RETURN_IF_ERROR(c->GetAttr("count", &count));
      c->set_output(0, c->Vector(count));
      return absl::OkStatus();
    })
    .Doc(
        "The `count` elements an encoding stands for (gcclCodecDecode). reference: the "
        "lattice codec's own tensor (count elements); empty for the other codecs.");

class CodecDecodeOp : public OpKernel {
 public:
  explicit CodecDecodeOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, codecFromAttrs(c, &codec_));
    OP_REQUIRES_OK(c, c->GetAttr("count", &count_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& encoded = ctx->input(0);
    const Tensor& reference = ctx->input(1);
    gcclDataType_t type;
    OP_REQUIRES(ctx, gcclTypeOf(reference.dtype(), &type),
                absl::InvalidArgumentError("gccl: codec_decode: unsupported dtype " +
                                           tensorflow::DataTypeString(reference.dtype())));
    bool lattice = codec_.codec == gcclCodecLattice;
    OP_REQUIRES(ctx, encoded.dims() == 1,
                absl::InvalidArgumentError("gccl: codec_decode: the encoding must be a vector, "
                                           "got shape " +
                                           encoded.shape().DebugString()));
    OP_REQUIRES(ctx, lattice ? reference.NumElements() == count_ : reference.NumElements() == 0,
                absl::InvalidArgumentError(
                    lattice ? "gccl: codec_decode: the lattice codec needs a reference of " +
                                  std::to_string(count_) + " elements, got " +
                                  std::to_string(reference.NumElements())
                            : std::string("gccl: codec_decode: only the lattice codec takes a "
                                          "reference")));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({count_}), &out));
    OP_REQUIRES_OK(
        ctx, gcclStatus(gcclCodecDecode(&codec_, encoded.tensor_data().data(),
                                        encoded.NumElements(), static_cast<size_t>(count_), type,
                                        const_cast<char*>(out->tensor_data().data()),
                                        lattice ? reference.tensor_data().data() : nullptr),
                        "codec_decode", nullptr));
  }

 private:
  gcclCodecConfig_t codec_ = GCCL_CODEC_CONFIG_INITIALIZER;
  int64_t count_ = 0;
};
REGISTER_KERNEL_BUILDER(Name("GcclCodecDecode").Device(tensorflow::DEVICE_CPU), CodecDecodeOp);

}  // namespace
}  // namespace gccl_tf

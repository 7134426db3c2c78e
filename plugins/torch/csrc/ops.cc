#include "ops.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "communicator.h"
#include "gccl_codec_options.h"
#include "tensor_args.h"

namespace gccl_torch {

namespace {

// ---- Handle registries ---------------------------------------------------------------------

struct Topology {
  gcclTopology_t topo = nullptr;
  ~Topology() {
    if (topo != nullptr) gcclTopologyDestroy(topo);
  }
};

// An overlap-SGP state: the gccl handle and what it points into, kept alive with it.
struct Gossip {
  gcclGossip_t gossip = nullptr;
  std::shared_ptr<Communicator> comm;
  std::shared_ptr<Topology> topology;
  at::Tensor x;
  at::Tensor weight;
};

struct Pairwise {
  gcclPairwise_t pairwise = nullptr;
  std::shared_ptr<Communicator> comm;
  std::shared_ptr<Topology> topology;
  at::Tensor x;
};

// A local SGD state with a wire codec (compressed exact averaging, gcclLocalSgd with
// gcclAverageAllReduce); without a codec GossipDataParallel averages with the backend's
// AllReduce instead.
struct LocalSgd {
  gcclLocalSgd_t localSgd = nullptr;
  std::shared_ptr<Communicator> comm;
  at::Tensor x;
};

template <typename T>
class Registry {
 public:
  explicit Registry(const char* kind) : kind_(kind) {}
  int64_t add(std::shared_ptr<T> item) {
    std::lock_guard<std::mutex> lock(mutex_);
    items_[next_] = std::move(item);
    return next_++;
  }
  std::shared_ptr<T> get(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = items_.find(id);
    TORCH_CHECK_VALUE(it != items_.end(), "gccl: no ", kind_, " with id ", id,
                      " (destroyed, or never made)");
    return it->second;
  }
  // The state `id`, which must have been made for tensor `x` (states keep theirs in `x`).
  std::shared_ptr<T> getFor(int64_t id, const at::Tensor& x, const std::string& what) {
    auto item = get(id);
    TORCH_CHECK_VALUE(x.data_ptr() == item->x.data_ptr(), "gccl: ", what,
                      ": pass the tensor the state was created with");
    return item;
  }
  std::shared_ptr<T> take(int64_t id) {
    auto item = get(id);
    std::lock_guard<std::mutex> lock(mutex_);
    items_.erase(id);
    return item;
  }

 private:
  const char* kind_;
  std::mutex mutex_;
  std::map<int64_t, std::shared_ptr<T>> items_;
  int64_t next_ = 1;
};

Registry<Topology>& topologies() {
  static Registry<Topology> registry("topology");
  return registry;
}
Registry<Gossip>& gossips() {
  static Registry<Gossip> registry("overlap-SGP state");
  return registry;
}
Registry<Pairwise>& pairwises() {
  static Registry<Pairwise> registry("pairwise state");
  return registry;
}
Registry<LocalSgd>& localSgds() {
  static Registry<LocalSgd> registry("local SGD state");
  return registry;
}

// ---- Argument checks -----------------------------------------------------------------------

// The model tensor of a gossip op: CPU, contiguous (gccl updates it in place), floating.
gcclDataType_t modelType(const at::Tensor& x, const std::string& what) {
  checkCpu(x, what);
  TORCH_CHECK_VALUE(x.is_contiguous(), "gccl: ", what,
                    ": the tensor must be contiguous (gccl updates it in place)");
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), "gccl: ", what,
                   ": gossip averages floating tensors, got ", x.scalar_type());
  return toGcclType(x.scalar_type(), what);
}

double* weightPointer(const at::Tensor& w, const std::string& what) {
  checkCpu(w, what);
  TORCH_CHECK_TYPE(w.scalar_type() == at::kDouble && w.numel() == 1 && w.is_contiguous(),
                   "gccl: ", what,
                   ": the push-sum weight must be a float64 tensor of one "
                   "element (it travels as float64), got ",
                   w.scalar_type(), " of ", w.numel(), " elements");
  return w.data_ptr<double>();
}

// The wire codec of a gossip op from its codec arguments (the Python Codec's fields; top-k's
// are not taken: gossip refuses it), checked against the model's type and size by gccl's own
// rules (gcclCodecEncodedBytes) so that a codec the tensor cannot take is a ValueError before
// anything is sent.
gccl_plugin::GossipCodecOptions gossipCodec(const at::Tensor& x, gcclDataType_t type,
                                            const std::string& codec, int64_t bits, int64_t bucket,
                                            const std::string& rounding, int64_t seed,
                                            double latticeStep, const std::string& what) {
  gccl_plugin::GossipCodecOptions options;
  std::string why = gccl_plugin::makeCodecConfig(codec, bits, bucket, rounding, seed, latticeStep,
                                                 0, 0.01, &options.codec);
  TORCH_CHECK_VALUE(why.empty(), why, " (", what, ")");
  if (options.codec.codec != gcclCodecNone) {
    size_t bytes = 0;
    if (gcclCodecEncodedBytes(&options.codec, x.numel(), type, &bytes) != gcclSuccess) {
      const char* reason = gcclGetLastError(nullptr);
      TORCH_CHECK_VALUE(false, "gccl: ", what, ": codec ", codec, " refused for this ",
                        x.scalar_type(), " tensor: ", reason != nullptr ? reason : "");
    }
  }
  return options;
}

// ---- Ops -----------------------------------------------------------------------------------

void pushSum(at::Tensor x, at::Tensor weight, int64_t topology, int64_t step, int64_t comm,
             std::string codec, int64_t bits, int64_t bucket, std::string rounding,
             int64_t codecSeed, double latticeStep) {
  const std::string what = "push_sum";
  gcclDataType_t type = modelType(x, what);
  double* w = weightPointer(weight, what);
  auto options = gossipCodec(x, type, codec, bits, bucket, rounding, codecSeed, latticeStep, what);
  auto topo = topologies().get(topology);
  auto c = lookupCommunicator(comm);
  std::lock_guard<std::mutex> lock(c->issueMutex());
  check(gcclPushSumEx(x.data_ptr(), x.numel(), type, w, topo->topo, static_cast<uint64_t>(step),
                      options.get(), c->get(), nullptr, nullptr),
        what, c->get());
}

at::Tensor pushSumDebias(const at::Tensor& x, const at::Tensor& weight) {
  const std::string what = "push_sum_debias";
  checkCpu(x, what);
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), "gccl: ", what,
                   ": floating tensors only, got ", x.scalar_type());
  gcclDataType_t type = toGcclType(x.scalar_type(), what);
  double w = *weightPointer(weight, what);
  at::Tensor in = x.contiguous();
  at::Tensor z = at::empty_like(in);
  check(gcclPushSumDebias(in.data_ptr(), z.data_ptr(), in.numel(), type, w), what, nullptr);
  return z;
}

void neighborAverage(at::Tensor x, int64_t topology, int64_t step, int64_t comm, std::string codec,
                     int64_t bits, int64_t bucket, std::string rounding, int64_t codecSeed,
                     double latticeStep) {
  const std::string what = "neighbor_average";
  gcclDataType_t type = modelType(x, what);
  auto options = gossipCodec(x, type, codec, bits, bucket, rounding, codecSeed, latticeStep, what);
  auto topo = topologies().get(topology);
  auto c = lookupCommunicator(comm);
  std::lock_guard<std::mutex> lock(c->issueMutex());
  check(
      gcclNeighborAverageEx(x.data_ptr(), x.data_ptr(), x.numel(), type, topo->topo,
                            static_cast<uint64_t>(step), options.get(), c->get(), nullptr, nullptr),
      what, c->get());
}

int64_t gossipCreate(at::Tensor x, at::Tensor weight, int64_t topology, int64_t staleness,
                     int64_t comm, std::string codec, int64_t bits, int64_t bucket,
                     std::string rounding, int64_t codecSeed, double latticeStep) {
  const std::string what = "gossip_create";
  gcclDataType_t type = modelType(x, what);
  double* w = weightPointer(weight, what);
  TORCH_CHECK_VALUE(staleness >= 0 && staleness <= INT32_MAX, "gccl: ", what,
                    ": staleness must be >= 0, got ", staleness);
  // gccl copies the codec configuration: the options need not outlive the call.
  auto options = gossipCodec(x, type, codec, bits, bucket, rounding, codecSeed, latticeStep, what);
  auto g = std::make_shared<Gossip>();
  g->topology = topologies().get(topology);
  g->comm = lookupCommunicator(comm);
  g->x = x;
  g->weight = weight;
  std::lock_guard<std::mutex> lock(g->comm->issueMutex());
  check(gcclGossipCreateEx(&g->gossip, x.data_ptr(), x.numel(), type, w, g->topology->topo,
                           static_cast<int>(staleness), options.get(), g->comm->get()),
        what, g->comm->get());
  return gossips().add(g);
}

std::shared_ptr<Gossip> gossipFor(int64_t id, const at::Tensor& x, const at::Tensor& weight,
                                  const std::string& what) {
  auto g = gossips().get(id);
  TORCH_CHECK_VALUE(x.data_ptr() == g->x.data_ptr() && weight.data_ptr() == g->weight.data_ptr(),
                    "gccl: ", what, ": pass the tensors the state was created with");
  return g;
}

void gossipStart(int64_t gossip, at::Tensor x, at::Tensor weight, int64_t step) {
  auto g = gossipFor(gossip, x, weight, "gossip_start");
  std::lock_guard<std::mutex> lock(g->comm->issueMutex());
  check(gcclGossipStart(g->gossip, static_cast<uint64_t>(step)), "gossip_start", g->comm->get());
}

void gossipFinish(int64_t gossip, at::Tensor x, at::Tensor weight, int64_t step) {
  auto g = gossipFor(gossip, x, weight, "gossip_finish");
  std::lock_guard<std::mutex> lock(g->comm->issueMutex());
  check(gcclGossipFinish(g->gossip, static_cast<uint64_t>(step)), "gossip_finish", g->comm->get());
}

void gossipDestroy(int64_t gossip, at::Tensor x, at::Tensor weight) {
  gossipFor(gossip, x, weight, "gossip_destroy");
  auto g = gossips().take(gossip);
  std::lock_guard<std::mutex> lock(g->comm->issueMutex());
  check(gcclGossipDestroy(g->gossip), "gossip_destroy", g->comm->get());
}

int64_t pairwiseCreate(at::Tensor x, int64_t topology, int64_t seed, int64_t comm,
                       std::string codec, int64_t bits, int64_t bucket, std::string rounding,
                       int64_t codecSeed, double latticeStep) {
  const std::string what = "pairwise_create";
  gcclDataType_t type = modelType(x, what);
  auto options = gossipCodec(x, type, codec, bits, bucket, rounding, codecSeed, latticeStep, what);
  auto p = std::make_shared<Pairwise>();
  p->topology = topologies().get(topology);
  p->comm = lookupCommunicator(comm);
  p->x = x;
  std::lock_guard<std::mutex> lock(p->comm->issueMutex());
  check(gcclPairwiseCreateEx(&p->pairwise, x.data_ptr(), x.numel(), type, p->topology->topo,
                             static_cast<uint64_t>(seed), options.get(), p->comm->get()),
        what, p->comm->get());
  return pairwises().add(p);
}

std::shared_ptr<Pairwise> pairwiseFor(int64_t id, const at::Tensor& x, const std::string& what) {
  return pairwises().getFor(id, x, what);
}

int64_t pairwiseExchange(int64_t pairwise, at::Tensor x, int64_t step) {
  auto p = pairwiseFor(pairwise, x, "pairwise_exchange");
  int partner = -1;
  std::lock_guard<std::mutex> lock(p->comm->issueMutex());
  check(gcclPairwiseExchange(p->pairwise, static_cast<uint64_t>(step), &partner),
        "pairwise_exchange", p->comm->get());
  return partner;
}

// Lock and unlock are not communicator calls: they only take the model's lock against the
// partners' exchanges, so they do not hold the issue mutex.
void pairwiseLock(int64_t pairwise, at::Tensor x) {
  auto p = pairwiseFor(pairwise, x, "pairwise_lock");
  check(gcclPairwiseLock(p->pairwise), "pairwise_lock", p->comm->get());
}

void pairwiseUnlock(int64_t pairwise, at::Tensor x) {
  auto p = pairwiseFor(pairwise, x, "pairwise_unlock");
  check(gcclPairwiseUnlock(p->pairwise), "pairwise_unlock", p->comm->get());
}

void pairwiseDestroy(int64_t pairwise, at::Tensor x) {
  pairwiseFor(pairwise, x, "pairwise_destroy");
  auto p = pairwises().take(pairwise);
  std::lock_guard<std::mutex> lock(p->comm->issueMutex());
  check(gcclPairwiseDestroy(p->pairwise), "pairwise_destroy", p->comm->get());
}

int64_t localSgdCreate(at::Tensor x, int64_t interval, int64_t comm, std::string codec,
                       int64_t bits, int64_t bucket, std::string rounding, int64_t codecSeed,
                       double latticeStep) {
  const std::string what = "local_sgd_create";
  gcclDataType_t type = modelType(x, what);
  TORCH_CHECK_VALUE(interval >= 1 && interval <= INT32_MAX, "gccl: ", what,
                    ": interval must be >= 1, got ", interval);
  // gccl copies the options and their codec configuration.
  auto options = gossipCodec(x, type, codec, bits, bucket, rounding, codecSeed, latticeStep, what);
  auto l = std::make_shared<LocalSgd>();
  l->comm = lookupCommunicator(comm);
  l->x = x;
  std::lock_guard<std::mutex> lock(l->comm->issueMutex());
  check(gcclLocalSgdCreate(&l->localSgd, x.data_ptr(), x.numel(), type, static_cast<int>(interval),
                           gcclAverageAllReduce, nullptr, options.get(), l->comm->get()),
        what, l->comm->get());
  return localSgds().add(l);
}

std::shared_ptr<LocalSgd> localSgdFor(int64_t id, const at::Tensor& x, const std::string& what) {
  return localSgds().getFor(id, x, what);
}

bool localSgdStep(int64_t localSgd, at::Tensor x, int64_t step) {
  auto l = localSgdFor(localSgd, x, "local_sgd_step");
  int averaged = 0;
  std::lock_guard<std::mutex> lock(l->comm->issueMutex());
  check(gcclLocalSgdStep(l->localSgd, static_cast<uint64_t>(step), &averaged), "local_sgd_step",
        l->comm->get());
  return averaged != 0;
}

void localSgdDestroy(int64_t localSgd, at::Tensor x) {
  localSgdFor(localSgd, x, "local_sgd_destroy");
  auto l = localSgds().take(localSgd);
  check(gcclLocalSgdDestroy(l->localSgd), "local_sgd_destroy", l->comm->get());
}

// ---- Sparse AllReduce and top-k gradient compression ------------------------------------------

// gccl's reduction from the ops' `op` argument: the sparse calls sum or average.
gcclRedOp_t sparseReduction(const std::string& op, const std::string& what) {
  if (op == "sum") return gcclSum;
  if (op == "avg") return gcclAvg;
  TORCH_CHECK_VALUE(false, "gccl: ", what, ": op must be \"sum\" or \"avg\", got \"", op, "\"");
}

// The sparse count as size_t: 0 <= count <= 2^32 (the range of uint32 indices).
size_t sparseCount(int64_t count, const std::string& what) {
  TORCH_CHECK_VALUE(count >= 0 && count <= (int64_t{1} << 32), "gccl: ", what,
                    ": count must be in 0..2^32 (uint32 indices), got ", count);
  return static_cast<size_t>(count);
}

// A sparse input: 1-D indices and values of the same length, as gccl takes them (uint32 indices,
// contiguous values). uint32 tensors go as they are; int32 ones are reinterpreted after a check
// that none is negative; int64 ones are converted after a check that each fits in uint32. The
// rest (ascending, distinct, below count) is gccl's check, which names the position.
struct SparseInput {
  at::Tensor indices;  // uint32 bits: kUInt32 or kInt
  at::Tensor values;
  gcclDataType_t type;
  size_t nnz;
  const uint32_t* index() const { return static_cast<const uint32_t*>(indices.data_ptr()); }
};

SparseInput sparseInput(const at::Tensor& indices, const at::Tensor& values,
                        const std::string& what) {
  checkCpu(indices, what);
  checkCpu(values, what);
  TORCH_CHECK_VALUE(indices.dim() == 1 && values.dim() == 1 && indices.numel() == values.numel(),
                    "gccl: ", what,
                    ": indices and values must be 1-D tensors of the same length, got shapes ",
                    indices.sizes(), " and ", values.sizes());
  SparseInput in;
  in.type = toGcclType(values.scalar_type(), what);
  in.values = values.contiguous();
  in.nnz = static_cast<size_t>(indices.numel());
  at::ScalarType t = indices.scalar_type();
  if (t == at::kUInt32) {
    in.indices = indices.contiguous();
  } else if (t == at::kInt) {
    in.indices = indices.contiguous();
    const int32_t* p = in.indices.data_ptr<int32_t>();
    for (size_t i = 0; i < in.nnz; ++i) {
      TORCH_CHECK_VALUE(p[i] >= 0, "gccl: ", what, ": indices[", i, "] = ", p[i], " is negative");
    }
  } else if (t == at::kLong) {
    const at::Tensor wide = indices.contiguous();
    const int64_t* p = wide.data_ptr<int64_t>();
    for (size_t i = 0; i < in.nnz; ++i) {
      TORCH_CHECK_VALUE(p[i] >= 0 && p[i] <= int64_t{UINT32_MAX}, "gccl: ", what, ": indices[", i,
                        "] = ", p[i], " is outside the range of uint32 indices");
    }
    in.indices = wide.to(at::kUInt32);
  } else {
    TORCH_CHECK_TYPE(false, "gccl: ", what, ": indices must be uint32, int32 or int64, got ", t);
  }
  return in;
}

at::Tensor sparseAllReduce(const at::Tensor& indices, const at::Tensor& values, int64_t count,
                           std::string op, int64_t comm) {
  const std::string what = "sparse_all_reduce";
  gcclRedOp_t red = sparseReduction(op, what);
  size_t n = sparseCount(count, what);
  SparseInput in = sparseInput(indices, values, what);
  at::Tensor out = at::empty({count}, in.values.options());
  auto c = lookupCommunicator(comm);
  std::lock_guard<std::mutex> lock(c->issueMutex());
  check(gcclSparseAllReduce(in.index(), in.values.data_ptr(), in.nnz, n, in.type, red,
                            out.data_ptr(), c->get(), nullptr),
        what, c->get());
  return out;
}

// The first try has room for `capacity` entries (0: min(count, 65536)); when the result does
// not fit, every rank is told the need (the result is the same on every rank, and so is the
// capacity when every rank passes the same one) and tries again with exactly that room.
std::tuple<at::Tensor, at::Tensor> sparseAllReduceToSparse(const at::Tensor& indices,
                                                           const at::Tensor& values, int64_t count,
                                                           std::string op, int64_t comm,
                                                           int64_t capacity) {
  const std::string what = "sparse_all_reduce_to_sparse";
  gcclRedOp_t red = sparseReduction(op, what);
  size_t n = sparseCount(count, what);
  TORCH_CHECK_VALUE(capacity >= 0, "gccl: ", what, ": capacity must be >= 0, got ", capacity);
  SparseInput in = sparseInput(indices, values, what);
  size_t room = std::min<size_t>(n, capacity > 0 ? static_cast<size_t>(capacity) : 65536);
  auto c = lookupCommunicator(comm);
  for (int attempt = 0;; ++attempt) {
    at::Tensor outIndices = at::empty({static_cast<int64_t>(room)}, at::kUInt32);
    at::Tensor outValues = at::empty({static_cast<int64_t>(room)}, in.values.options());
    size_t outNnz = 0;
    gcclResult_t r;
    {
      std::lock_guard<std::mutex> lock(c->issueMutex());
      r = gcclSparseAllReduceToSparse(
          in.index(), in.values.data_ptr(), in.nnz, n, in.type, red,
          room > 0 ? static_cast<uint32_t*>(outIndices.data_ptr()) : nullptr,
          room > 0 ? outValues.data_ptr() : nullptr, room, &outNnz, c->get(), nullptr);
      if (r == gcclInvalidArgument && outNnz > room && attempt == 0) {
        room = outNnz;  // every rank was told the same need
        continue;
      }
      check(r, what, c->get());
    }
    int64_t k = static_cast<int64_t>(outNnz);
    return {outIndices.narrow(0, 0, k), outValues.narrow(0, 0, k)};
  }
}

// Top-k with error feedback into grad, in place: k entries (`k` > 0) or `fraction` of them.
int64_t topkAllReduce(at::Tensor grad, at::Tensor residual, double fraction, int64_t k,
                      std::string op, int64_t comm) {
  const std::string what = "topk_all_reduce";
  gcclRedOp_t red = sparseReduction(op, what);
  for (const at::Tensor* t : {&grad, &residual}) {
    const char* name = t == &grad ? "grad" : "residual";
    checkCpu(*t, what);
    TORCH_CHECK_TYPE(t->scalar_type() == at::kFloat, "gccl: ", what, ": ", name,
                     " must be float32 (top-k selects float32 entries), got ", t->scalar_type());
    TORCH_CHECK_VALUE(t->is_contiguous(), "gccl: ", what, ": ", name,
                      " must be contiguous (gccl updates it in place)");
  }
  TORCH_CHECK_VALUE(residual.numel() == grad.numel(), "gccl: ", what, ": the residual has ",
                    residual.numel(), " elements, the gradient ", grad.numel());
  gcclCodecConfig_t config;
  std::string why =
      gccl_plugin::makeCodecConfig("topk", 8, 1024, "nearest", 0, 0.0, k, fraction, &config);
  TORCH_CHECK_VALUE(why.empty(), why, " (", what, ")");
  size_t bytes = 0;
  if (gcclCodecEncodedBytes(&config, grad.numel(), gcclFloat32, &bytes) != gcclSuccess) {
    const char* reason = gcclGetLastError(nullptr);
    TORCH_CHECK_VALUE(false, "gccl: ", what, ": ", reason != nullptr ? reason : "");
  }
  size_t sent = 0;
  auto c = lookupCommunicator(comm);
  std::lock_guard<std::mutex> lock(c->issueMutex());
  float* g = grad.data_ptr<float>();
  check(gcclTopKAllReduce(g, residual.data_ptr<float>(), grad.numel(), &config, red, g, &sent,
                          c->get(), nullptr),
        what, c->get());
  return static_cast<int64_t>(sent);
}

}  // namespace

// ---- Topologies ----------------------------------------------------------------------------

int64_t topologyCreate(int64_t kind, int64_t nranks, int64_t peersPerStep) {
  auto t = std::make_shared<Topology>();
  check(gcclTopologyCreate(&t->topo, static_cast<gcclTopologyKind_t>(kind),
                           static_cast<int>(nranks), static_cast<int>(peersPerStep)),
        "topology create", nullptr);
  return topologies().add(t);
}

int64_t topologyFromWeights(int64_t nranks, int64_t nsteps, const std::vector<double>& weights) {
  TORCH_CHECK_VALUE(
      nranks > 0 && nsteps > 0 && weights.size() == static_cast<size_t>(nranks * nranks * nsteps),
      "gccl: topology from weights: expected ", nsteps, " x ", nranks, " x ", nranks,
      " weights, got ", weights.size());
  auto t = std::make_shared<Topology>();
  check(gcclTopologyCreateFromWeights(&t->topo, static_cast<int>(nranks), static_cast<int>(nsteps),
                                      weights.data()),
        "topology from weights", nullptr);
  return topologies().add(t);
}

void topologyDestroy(int64_t topology) {
  topologies().take(topology);
}

int64_t topologyPeriod(int64_t topology) {
  int period = 0;
  check(gcclTopologyPeriod(topologies().get(topology)->topo, &period), "topology period", nullptr);
  return period;
}

std::tuple<std::vector<int>, std::vector<double>, double> topologyOutPeers(int64_t topology,
                                                                           int64_t step,
                                                                           int64_t rank) {
  auto t = topologies().get(topology);
  int npeers = 0;
  double self = 0;
  std::vector<int> peers(4096);
  std::vector<double> weights(peers.size());
  // Capacity for 4097 ranks; a topology that needs more is an error naming the need.
  gcclResult_t r = gcclTopologyOutPeers(t->topo, static_cast<uint64_t>(step),
                                        static_cast<int>(rank), static_cast<int>(peers.size()),
                                        &npeers, peers.data(), weights.data(), &self);
  check(r, "topology out-peers", nullptr);
  peers.resize(npeers);
  weights.resize(npeers);
  return {peers, weights, self};
}

}  // namespace gccl_torch

// The codec arguments of the gossip ops: the Python Codec's fields (gccl/codec.py) that gossip
// reads, defaults as GCCL_CODEC_CONFIG_INITIALIZER (no compression).
#define GCCL_CODEC_ARGS                                                         \
  "str codec=\"none\", int bits=8, int bucket=1024, str rounding=\"nearest\", " \
  "int codec_seed=0, float lattice_step=0.0"

TORCH_LIBRARY(gccl, m) {
  using namespace gccl_torch;
  m.def(
      "push_sum(Tensor(a!) x, Tensor(b!) ps_weight, int topology, int step, int "
      "comm, " GCCL_CODEC_ARGS ") -> ()",
      &pushSum);
  m.def("push_sum_debias(Tensor x, Tensor ps_weight) -> Tensor", &pushSumDebias);
  m.def("neighbor_average(Tensor(a!) x, int topology, int step, int comm, " GCCL_CODEC_ARGS
        ") -> ()",
        &neighborAverage);
  m.def(
      "gossip_create(Tensor(a!) x, Tensor(b!) ps_weight, int topology, int staleness, int "
      "comm, " GCCL_CODEC_ARGS ") -> int",
      &gossipCreate);
  m.def("gossip_start(int gossip, Tensor(a!) x, Tensor(b!) ps_weight, int step) -> ()",
        &gossipStart);
  m.def("gossip_finish(int gossip, Tensor(a!) x, Tensor(b!) ps_weight, int step) -> ()",
        &gossipFinish);
  m.def("gossip_destroy(int gossip, Tensor(a!) x, Tensor(b!) ps_weight) -> ()", &gossipDestroy);
  m.def("pairwise_create(Tensor(a!) x, int topology, int seed, int comm, " GCCL_CODEC_ARGS
        ") -> int",
        &pairwiseCreate);
  m.def("pairwise_exchange(int pairwise, Tensor(a!) x, int step) -> int", &pairwiseExchange);
  m.def("pairwise_lock(int pairwise, Tensor(a!) x) -> ()", &pairwiseLock);
  m.def("pairwise_unlock(int pairwise, Tensor(a!) x) -> ()", &pairwiseUnlock);
  m.def("pairwise_destroy(int pairwise, Tensor(a!) x) -> ()", &pairwiseDestroy);
  m.def("local_sgd_create(Tensor(a!) x, int interval, int comm, " GCCL_CODEC_ARGS ") -> int",
        &localSgdCreate);
  m.def("local_sgd_step(int local_sgd, Tensor(a!) x, int step) -> bool", &localSgdStep);
  m.def("local_sgd_destroy(int local_sgd, Tensor(a!) x) -> ()", &localSgdDestroy);
  m.def("sparse_all_reduce(Tensor indices, Tensor values, int count, str op, int comm) -> Tensor",
        &sparseAllReduce);
  m.def(
      "sparse_all_reduce_to_sparse(Tensor indices, Tensor values, int count, str op, int comm, "
      "int capacity=0) -> (Tensor, Tensor)",
      &sparseAllReduceToSparse);
  m.def(
      "topk_all_reduce(Tensor(a!) grad, Tensor(b!) residual, float fraction, int k, str op, int "
      "comm) -> int",
      &topkAllReduce);
}

// Periodic averaging for local SGD (K-AVG): every `interval` steps, the exact
// average over all ranks (AllReduce, or a compressed all-gather of encodings)
// or one neighbour-averaging step on a topology.
//
// The compressed exact average: each rank encodes x once, the encodings are
// all-gathered, and every rank computes x <- sum_r (1/n) decode(e_r) in rank
// order (lattice codes decoded against a copy of its own x taken first), so
// every rank ends with the same bits.
#include <memory>
#include <vector>

#include "core/api_call.h"
#include "core/executor.h"
#include "core/handle_registry.h"
#include "core/wire_codec.h"
#include "gossip/gossip_checks.h"

struct gcclLocalSgd {
  gcclComm* comm = nullptr;
  void* x = nullptr;
  size_t count = 0;
  gcclDataType_t type = gcclFloat32;
  size_t bytes = 0;
  gccl::MemoryType mem = gccl::MemoryType::kHost;
  int interval = 1;
  gcclAverageMethod_t method = gcclAverageAllReduce;
  std::shared_ptr<gccl::Topology> topo;  // gossip
  gcclTopology_t topoHandle = nullptr;   // gossip: passed to gcclNeighborAverageEx
  gcclCodecConfig_t codecConfig;         // copied from the options
  bool hasCodec = false;
  gccl::WireCodec codec;
  size_t encodedBytes = 0;
  std::shared_ptr<gccl::Executor> exec;
  gccl::ExecBuffer mine, all, reference, decoded;  // the compressed exact average
};

namespace gccl {

namespace {

HandleRegistry<gcclLocalSgd>& localSgds() {
  static auto* r = new HandleRegistry<gcclLocalSgd>("local SGD handle");
  return *r;
}

gcclResult_t compressedAverage(gcclLocalSgd* h, uint64_t round) {
  Executor& exec = *h->exec;
  const int n = h->comm->nranks;
  kernels::codec::Params p =
      h->codec.forMessage(h->count, mixBits(round) ^ static_cast<uint64_t>(h->comm->rank));
  size_t written = 0;
  GCCL_CHECK(exec.encode(p, h->x, h->count, h->type, h->mine.data(), h->encodedBytes, &written,
                         nullptr, h->mem));
  GCCL_REQUIRE(written == h->encodedBytes, gcclInternalError,
               "the encoding took %zu bytes, not the %zu it is sized for", written,
               h->encodedBytes);
  GCCL_CHECK(gcclAllGather(h->mine.data(), h->all.data(), h->encodedBytes, gcclUint8, h->comm,
                           nullptr, nullptr));
  GCCL_CHECK(exec.copy(h->reference.data(), h->mem, h->x, h->mem, h->bytes));
  GCCL_CHECK(exec.zero(h->x, h->bytes, h->mem));
  for (int r = 0; r < n; ++r) {
    gcclResult_t res = exec.decode(p, h->all.data() + static_cast<size_t>(r) * h->encodedBytes,
                                   h->encodedBytes, h->count, h->type, h->decoded.data(),
                                   h->codec.reference(h->reference.data()), h->mem);
    if (res != gcclSuccess) {
      // Put the model back: a failed average loses nothing.
      (void)exec.copy(h->x, h->mem, h->reference.data(), h->mem, h->bytes);
      return setError(res, "decoding rank %d's model: %s", r, threadLastError());
    }
    GCCL_CHECK(exec.axpy(h->x, 1.0 / n, h->decoded.data(), h->count, h->type, h->mem));
  }
  return gcclSuccess;
}

}  // namespace

}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclLocalSgdCreate(gcclLocalSgd_t* localSgd, void* x, size_t count,
                                gcclDataType_t datatype, int interval, gcclAverageMethod_t method,
                                gcclTopology_t topo, const gcclGossipOptions_t* options,
                                gcclComm_t comm) {
  const char* call = "gcclLocalSgdCreate";
  return apiCall(comm, call, nullptr, [&]() -> gcclResult_t {
    GCCL_REQUIRE(localSgd != nullptr, gcclInvalidArgument, "%s: localSgd (the output) is NULL",
                 call);
    size_t bytes;
    MemoryType mem;
    GCCL_CHECK(checkGossipModel(comm, x, count, datatype, call, &bytes, &mem));
    GCCL_REQUIRE(interval >= 1, gcclInvalidArgument,
                 "%s: interval %d; models are averaged every interval >= 1 steps", call, interval);
    GCCL_REQUIRE(method == gcclAverageAllReduce || method == gcclAverageGossip, gcclInvalidArgument,
                 "%s: method %d is neither gcclAverageAllReduce nor gcclAverageGossip", call,
                 static_cast<int>(method));
    auto h = std::make_unique<gcclLocalSgd>();
    if (method == gcclAverageGossip)
      GCCL_CHECK(checkTopologyFor(comm, topo, gcclMixDoublyStochastic, call, &h->topo));
    GCCL_CHECK(readGossipOptions(options, call, &h->codec));
    GCCL_CHECK(checkCodecType(h->codec, datatype, call));
    h->comm = comm;
    h->x = x;
    h->count = count;
    h->type = datatype;
    h->bytes = bytes;
    h->mem = mem;
    h->interval = interval;
    h->method = method;
    h->topoHandle = method == gcclAverageGossip ? topo : nullptr;
    h->exec = comm->engine->executor();
    h->hasCodec = h->codec.active;
    if (h->hasCodec) h->codecConfig = *options->codec;
    if (h->hasCodec && method == gcclAverageAllReduce) {
      GCCL_CHECK(h->codec.maxBytes(count, datatype, &h->encodedBytes));
      GCCL_CHECK(h->mine.allocate(h->exec, h->encodedBytes, mem));
      GCCL_CHECK(
          h->all.allocate(h->exec, h->encodedBytes * static_cast<size_t>(comm->nranks), mem));
      GCCL_CHECK(h->reference.allocate(h->exec, bytes, mem));
      GCCL_CHECK(h->decoded.allocate(h->exec, bytes, mem));
    }
    localSgds().add(h.get());
    *localSgd = h.release();
    return gcclSuccess;
  });
}

gcclResult_t gcclLocalSgdStep(gcclLocalSgd_t h, uint64_t step, int* averaged) {
  const char* call = "gcclLocalSgdStep";
  clearThreadLastError();
  GCCL_CHECK(localSgds().check(h, call));
  if (averaged != nullptr) *averaged = 0;
  if ((step + 1) % static_cast<uint64_t>(h->interval) != 0) return gcclSuccess;
  uint64_t round = (step + 1) / static_cast<uint64_t>(h->interval) - 1;
  gcclResult_t r;
  if (h->method == gcclAverageGossip) {
    gcclGossipOptions_t o = GCCL_GOSSIP_OPTIONS_INITIALIZER;
    o.codec = h->hasCodec ? &h->codecConfig : nullptr;
    r = gcclNeighborAverageEx(h->x, h->x, h->count, h->type, h->topoHandle, round, &o, h->comm,
                              nullptr, nullptr);
  } else if (!h->hasCodec) {
    r = gcclAllReduce(h->x, h->x, h->count, h->type, gcclAvg, h->comm, nullptr, nullptr);
  } else {
    r = apiCall(h->comm, call, nullptr, [&]() { return compressedAverage(h, round); });
  }
  if (r == gcclSuccess && averaged != nullptr) *averaged = 1;
  return r;
}

gcclResult_t gcclLocalSgdDestroy(gcclLocalSgd_t h) {
  const char* call = "gcclLocalSgdDestroy";
  clearThreadLastError();
  GCCL_CHECK(localSgds().check(h, call));
  localSgds().remove(h);
  delete h;
  return gcclSuccess;
}

}  // extern "C"

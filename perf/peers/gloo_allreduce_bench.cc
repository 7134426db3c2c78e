// gloo_allreduce_bench: Gloo's AllReduce (float32 sum, out of place) measured
// the way all_reduce_perf measures gcclAllReduce, for perf/compare.
//
//   gcclrun -n N gloo_allreduce_bench -b 8 -e 64M -f 4 -w 5 -n 20
//
// Ranks come from RANK / WORLD_SIZE (gcclrun and torchrun set them; without
// them the process is one rank). Rendezvous goes through a gloo FileStore in
// a directory of its own per launch, under $GLOO_STORE_DIR (default /tmp),
// named after the launch's id (TORCHELASTIC_RUN_ID, else GCCL_COMM_ID, else
// GLOO_RUN_ID); the ranks remove it at the end. Connections use Gloo's TCP
// transport on the interface $GLOO_SOCKET_IFNAME (default lo); a call that
// takes longer than $GLOO_TIMEOUT_S seconds (default 300) fails.
//
// The call is gloo::allreduce with AllreduceOptions and gloo::sum<float>,
// as PyTorch's ProcessGroupGloo issues it for CPU tensors. It blocks, so -z 0
// (non-blocking calls) is refused. Its algorithm is
// RING: that is what AllreduceOptions' default (UNSPECIFIED) runs in this
// Gloo version at every size. GLOO_ALLREDUCE_ALGORITHM=bcube picks the other
// one it has.
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/config.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "peer_bench.h"

namespace {

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

// Tags keep the measured calls and the driver's bookkeeping apart.
constexpr uint32_t kTagBench = 1;
constexpr uint32_t kTagCombine = 2;
constexpr uint32_t kTagBarrier = 3;

int envInt(const char* name, int fallback) {
  const char* s = getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  long v = strtol(s, &end, 10);
  if (*end != '\0' || v < 0 || v > 1 << 20) {
    fprintf(stderr, "gloo_allreduce_bench: %s=%s is not a number\n", name, s);
    exit(2);
  }
  return static_cast<int>(v);
}

std::string envOr(const char* name, const char* fallback) {
  const char* s = getenv(name);
  return s != nullptr && *s != '\0' ? s : fallback;
}

class GlooBackend : public peers::Backend {
 public:
  GlooBackend(int rank, int nranks) : rank_(rank), nranks_(nranks) {
    const std::string algo = envOr("GLOO_ALLREDUCE_ALGORITHM", "ring");
    if (algo == "bcube") {
      algorithm_ = gloo::AllreduceOptions::Algorithm::BCUBE;
      algorithmName_ = "BCUBE";
    } else if (algo != "ring") {
      throw std::runtime_error("GLOO_ALLREDUCE_ALGORITHM=" + algo + ": expected ring or bcube");
    }
  }
  ~GlooBackend() override { removeStore(); }
  GlooBackend(const GlooBackend&) = delete;
  GlooBackend& operator=(const GlooBackend&) = delete;

  // Throws gloo::Exception (or std::runtime_error) when it cannot connect.
  void connect() {
    gloo::transport::tcp::attr attr;
    attr.iface = envOr("GLOO_SOCKET_IFNAME", "lo");
    iface_ = attr.iface;
    device_ = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank_, nranks_);
    ctx->setTimeout(std::chrono::seconds(envInt("GLOO_TIMEOUT_S", 300)));
    makeStoreDir();
    store_ = std::make_unique<gloo::rendezvous::FileStore>(storeDir_);
    ctx->connectFullMesh(*store_, device_);
    context_ = ctx;
    // Every rank has read every address once all are past this barrier:
    // the store's files can go.
    barrier();
    removeStore();
  }

  int rank() const override { return rank_; }
  int nranks() const override { return nranks_; }

  void allreduce(const float* send, float* recv, size_t count) override {
    gloo::AllreduceOptions opts(context_);
    opts.setAlgorithm(algorithm_);
    // Gloo's input pointers are not const; out of place it only reads them.
    opts.setInput(const_cast<float*>(send), count);
    opts.setOutput(recv, count);
    opts.setReduceFunction(static_cast<ReduceFn>(&gloo::sum<float>));
    opts.setTag(kTagBench);
    gloo::allreduce(opts);
  }

  std::string noNonBlocking() const override { return "gloo::allreduce has no non-blocking form"; }

  void barrier() override {
    gloo::BarrierOptions opts(context_);
    opts.setTag(kTagBarrier);
    gloo::barrier(opts);
  }

  void combine(double* values, size_t n, peers::Combine op) override {
    gloo::AllreduceOptions opts(context_);
    opts.setOutput(values, n);
    ReduceFn fn = op == peers::Combine::kSum   ? static_cast<ReduceFn>(&gloo::sum<double>)
                  : op == peers::Combine::kMin ? static_cast<ReduceFn>(&gloo::min<double>)
                                               : static_cast<ReduceFn>(&gloo::max<double>);
    opts.setReduceFunction(fn);
    opts.setTag(kTagCombine);
    gloo::allreduce(opts);
  }

  std::vector<std::string> describe(const peers::Options&) const override {
    char version[32];
    snprintf(version, sizeof(version), "%d.%d.%d", GLOO_VERSION_MAJOR, GLOO_VERSION_MINOR,
             GLOO_VERSION_PATCH);
    return {"gloo::allreduce (AllreduceOptions, algorithm " + algorithmName_ +
                ", gloo::sum<float>), blocking, out of place",
            std::string("library: gloo ") + version + ", tcp transport on " + iface_ +
                ", FileStore rendezvous"};
  }

 private:
  void makeStoreDir() {
    std::string id = envOr("TORCHELASTIC_RUN_ID", "");
    if (id.empty()) id = envOr("GCCL_COMM_ID", "");
    if (id.empty()) id = envOr("GLOO_RUN_ID", "");
    // One rank reads no other rank's keys: a directory of its own will do.
    if (id.empty() && nranks_ == 1) id = "single-" + std::to_string(getpid());
    if (id.empty())
      throw std::runtime_error(
          "no launch id to name the rendezvous directory: start the ranks with gcclrun or "
          "torchrun, or set GLOO_RUN_ID to the same value on every rank");
    for (char& c : id)
      if (c == '/') c = '_';
    storeDir_ = envOr("GLOO_STORE_DIR", "/tmp") + "/gloo-store-" + id;
    if (mkdir(storeDir_.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::runtime_error("mkdir " + storeDir_ + ": " + strerror(errno));
  }

  // Each rank removes the keys it wrote; whichever rank finds the directory
  // empty removes it.
  void removeStore() {
    if (!store_) return;
    for (const std::string& path : store_->getAllKeyFilePaths())
      unlink(path.c_str());
    store_.reset();
    rmdir(storeDir_.c_str());
  }

  int rank_;
  int nranks_;
  gloo::AllreduceOptions::Algorithm algorithm_ = gloo::AllreduceOptions::Algorithm::RING;
  std::string algorithmName_ = "RING";
  std::string iface_;
  std::string storeDir_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::unique_ptr<gloo::rendezvous::FileStore> store_;
  std::shared_ptr<gloo::Context> context_;
};

}  // namespace

int main(int argc, char** argv) {
  const int rank = envInt("RANK", 0);
  const int nranks = envInt("WORLD_SIZE", 1);
  if (nranks < 1 || rank >= nranks) {
    fprintf(stderr, "gloo_allreduce_bench: RANK %d is not below WORLD_SIZE %d\n", rank, nranks);
    return 2;
  }
  peers::Options opt;
  int status = peers::parseOptions(argc, argv, rank == 0, &opt);
  if (status >= 0) return status;
  try {
    GlooBackend b(rank, nranks);
    b.connect();
    return peers::run("gloo_allreduce_bench", opt, b);
  } catch (const std::exception& e) {
    fprintf(stderr, "gloo_allreduce_bench: rank %d: %s\n", rank, e.what());
    return 1;
  }
}

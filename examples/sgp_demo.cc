// The main demo: data-parallel training on N local ranks with exact and gossip averaging.
//
//   build/perf/gcclrun -n 4 build/examples/sgp_demo [--iters N] [--batch N] [--seed N]
//
// Every rank trains the same small MLP (50 -> 64 ReLU -> 10 softmax) on its own shard of a
// synthetic 10-class Gaussian-mixture problem, once per method, each time from the same initial
// model with the same mini-batch order and learning-rate schedule:
//   allreduce-sgd  gradients averaged exactly with gcclAllReduce every step;
//   sgp            Stochastic Gradient Push: gradient at the de-biased model z = x / w, step on
//                  the numerator x, then one gcclPushSum on the one-peer exponential graph;
//   d-psgd         local step, then gcclNeighborAverage on the ring.
// Rank 0 prints one row per method. The program exits non-zero when SGP ends more than one
// point of test accuracy away from AllReduce SGD, so that it doubles as a smoke test.
//
//   build/perf/gcclrun -n 8 -f K build/examples/sgp_demo --faults K [--iters N]
//
// instead trains SGP alone in fault-tolerant mode while the last K ranks die (SIGKILL) halfway
// through: the survivors go on, then shrink the communicator and score the average of their
// models on it, and report the longest iteration after the failure (the survivors waiting for
// the dead and agreeing on who is alive). --faults 0 is the same run without a failure.
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gccl/gccl.h"

namespace {

// Communicator calls report their reason through the communicator; topology calls and
// de-biasing have none, and report through the thread's last error.
void check(gcclResult_t r, const char* what, gcclComm_t comm) {
  if (r == gcclSuccess) return;
  const char* why = gcclGetLastError(comm);
  if (why == nullptr || *why == '\0') why = gcclGetLastError(nullptr);
  fprintf(stderr, "sgp_demo: %s failed: %s: %s\n", what, gcclGetErrorString(r), why);
  exit(1);
}
#define CHECK(call, comm) check((call), #call, (comm))

// ---- Problem and model sizes ------------------------------------------------------------

constexpr size_t kDim = 50;
constexpr size_t kHidden = 64;
constexpr size_t kClasses = 10;
// Two clusters per class make the classes non-convex, so the hidden layer earns its keep.
constexpr size_t kClustersPerClass = 2;
// Spread of the cluster centres against unit noise: chosen so that the classes overlap and the
// best accuracy is around 90%, which leaves room to see one method do worse than another.
constexpr double kCentreSpread = 0.5;
constexpr size_t kTrainSamples = 32000;  // in total, split into one shard per rank
constexpr size_t kTestSamples = 4000;
constexpr double kBaseLr = 0.5;

// Parameter layout in one flat float32 vector, so that every collective moves the whole model
// as one buffer: W1 [kHidden x kDim], b1 [kHidden], W2 [kClasses x kHidden], b2 [kClasses].
constexpr size_t kW1 = 0;
constexpr size_t kB1 = kW1 + kHidden * kDim;
constexpr size_t kW2 = kB1 + kHidden;
constexpr size_t kB2 = kW2 + kClasses * kHidden;
constexpr size_t kParams = kB2 + kClasses;

// ---- Random numbers ---------------------------------------------------------------------

// A self-contained generator so that every rank, compiler and standard library draws exactly
// the same data and initial model (std::normal_distribution is implementation-defined).
constexpr double kPi = 3.14159265358979323846;

class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream)
      : s_(seed * 0x9e3779b97f4a7c15ull + stream * 0xbf58476d1ce4e5b9ull + 1) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double normal() {
    double u = 1.0 - uniform();  // in (0, 1], so that the log is finite
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * kPi * uniform());
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }

 private:
  uint64_t s_;
};

// Streams of one seed, so that changing one use never shifts another's draws.
enum Stream : uint64_t { kCentres = 1, kTrainData, kTestData, kInit, kBatches = 1000 };

// ---- Data ---------------------------------------------------------------------------------

struct Dataset {
  std::vector<float> x;  // size() * kDim features, row-major
  std::vector<int> y;
  size_t size() const { return y.size(); }
  const float* row(size_t i) const { return x.data() + i * kDim; }
};

Dataset sample(const std::vector<double>& centres, size_t n, Rng& rng) {
  Dataset d;
  d.x.resize(n * kDim);
  d.y.resize(n);
  for (size_t i = 0; i < n; ++i) {
    size_t cluster = rng.below(kClasses * kClustersPerClass);
    d.y[i] = static_cast<int>(cluster % kClasses);
    for (size_t j = 0; j < kDim; ++j)
      d.x[i * kDim + j] = static_cast<float>(centres[cluster * kDim + j] + rng.normal());
  }
  return d;
}

// Every rank generates the whole problem from the seed and keeps its slice of the training set:
// no data moves, and the shards are disjoint and identically distributed.
void makeData(uint64_t seed, int rank, int nranks, Dataset* shard, Dataset* test) {
  Rng centreRng(seed, kCentres);
  std::vector<double> centres(kClasses * kClustersPerClass * kDim);
  for (double& c : centres)
    c = kCentreSpread * centreRng.normal();
  Rng trainRng(seed, kTrainData), testRng(seed, kTestData);
  Dataset train = sample(centres, kTrainSamples, trainRng);
  *test = sample(centres, kTestSamples, testRng);
  size_t begin = train.size() * rank / nranks, end = train.size() * (rank + 1) / nranks;
  shard->x.assign(train.x.begin() + begin * kDim, train.x.begin() + end * kDim);
  shard->y.assign(train.y.begin() + begin, train.y.begin() + end);
}

// ---- Model --------------------------------------------------------------------------------

std::vector<float> initialModel(uint64_t seed) {
  Rng rng(seed, kInit);
  std::vector<float> p(kParams, 0.0f);
  // He initialisation for the ReLU layer, Xavier-like for the softmax layer; biases stay 0.
  for (size_t i = kW1; i < kB1; ++i)
    p[i] = static_cast<float>(rng.normal() * std::sqrt(2.0 / kDim));
  for (size_t i = kW2; i < kB2; ++i)
    p[i] = static_cast<float>(rng.normal() * std::sqrt(1.0 / kHidden));
  return p;
}

// Forward pass of one sample; leaves the hidden activations in h and the class probabilities
// in prob, and returns the cross-entropy loss for `label`.
float forward(const float* p, const float* in, int label, float* h, float* prob) {
  for (size_t u = 0; u < kHidden; ++u) {
    const float* w = p + kW1 + u * kDim;
    float a = p[kB1 + u];
    for (size_t j = 0; j < kDim; ++j)
      a += w[j] * in[j];
    h[u] = a > 0.0f ? a : 0.0f;
  }
  float maxLogit = -INFINITY;
  for (size_t c = 0; c < kClasses; ++c) {
    const float* w = p + kW2 + c * kHidden;
    float a = p[kB2 + c];
    for (size_t u = 0; u < kHidden; ++u)
      a += w[u] * h[u];
    prob[c] = a;
    maxLogit = std::max(maxLogit, a);
  }
  float sum = 0.0f;
  for (size_t c = 0; c < kClasses; ++c)
    sum += prob[c] = std::exp(prob[c] - maxLogit);
  for (size_t c = 0; c < kClasses; ++c)
    prob[c] /= sum;
  return -std::log(std::max(prob[label], 1e-30f));
}

// The mean gradient of the loss over the samples idx[0..n) of d, written to grad.
void gradient(const float* p, const Dataset& d, const size_t* idx, size_t n, float* grad) {
  std::fill(grad, grad + kParams, 0.0f);
  float h[kHidden], prob[kClasses], dh[kHidden];
  for (size_t s = 0; s < n; ++s) {
    const float* in = d.row(idx[s]);
    forward(p, in, d.y[idx[s]], h, prob);
    prob[d.y[idx[s]]] -= 1.0f;  // now d(loss)/d(logits)
    std::fill(dh, dh + kHidden, 0.0f);
    for (size_t c = 0; c < kClasses; ++c) {
      const float* w = p + kW2 + c * kHidden;
      float* gw = grad + kW2 + c * kHidden;
      for (size_t u = 0; u < kHidden; ++u) {
        gw[u] += prob[c] * h[u];
        dh[u] += prob[c] * w[u];
      }
      grad[kB2 + c] += prob[c];
    }
    for (size_t u = 0; u < kHidden; ++u) {
      if (h[u] <= 0.0f) continue;  // the ReLU passes no gradient where it was off
      float* gw = grad + kW1 + u * kDim;
      for (size_t j = 0; j < kDim; ++j)
        gw[j] += dh[u] * in[j];
      grad[kB1 + u] += dh[u];
    }
  }
  float scale = 1.0f / static_cast<float>(n);
  for (size_t i = 0; i < kParams; ++i)
    grad[i] *= scale;
}

struct Score {
  float loss, accuracy;  // mean cross-entropy, accuracy in percent
};

Score evaluate(const float* p, const Dataset& d) {
  double loss = 0.0;
  size_t right = 0;
  float h[kHidden], prob[kClasses];
  for (size_t i = 0; i < d.size(); ++i) {
    loss += forward(p, d.row(i), d.y[i], h, prob);
    if (std::max_element(prob, prob + kClasses) - prob == d.y[i]) ++right;
  }
  return {static_cast<float>(loss / d.size()), static_cast<float>(100.0 * right / d.size())};
}

// ---- Training -----------------------------------------------------------------------------

struct Options {
  int iters = 2000;
  int batch = 32;  // per rank and step
  uint64_t seed = 1;
  int faults = -1;  // --faults K: the fault-tolerance run, K ranks dying halfway
};

// One rank's state. Every method keeps its model in x; the push-sum methods treat x as the
// numerator and psWeight as its weight, the others leave psWeight at 1 so that the de-biased
// model z = x / psWeight is the model itself and every method is evaluated the same way.
struct Worker {
  gcclComm_t comm = nullptr;
  int rank = 0, nranks = 1;
  Options opt;
  Dataset shard, test;
  gcclTopology_t exponential = nullptr;  // one-peer directed exponential graph (SGP)
  gcclTopology_t ring = nullptr;         // undirected ring (D-PSGD)
  gcclGossip_t gossip = nullptr;         // overlap SGP state, bound to x while that method runs
  gcclPairwise_t pairwise = nullptr;     // pairwise gossip state, likewise
  gcclLocalSgd_t localSgd = nullptr;     // local SGD state, likewise
  std::vector<float> x, z, grad;
  std::vector<float> residual;  // top-k's error feedback: what was not sent yet
  double psWeight = 1.0;
  // Mini-batches walk through a fresh permutation of the shard each epoch.
  Rng batchRng{0, 0};
  std::vector<size_t> order;
  size_t cursor = 0;

  void reset(const std::vector<float>& init) {
    x = init;
    z.assign(kParams, 0.0f);
    grad.assign(kParams, 0.0f);
    residual.assign(kParams, 0.0f);
    psWeight = 1.0;
    // The same batches in the same order for every method, so that only the averaging differs.
    batchRng = Rng(opt.seed, kBatches + rank);
    order.resize(shard.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    cursor = order.size();
  }

  // Step decay (x0.1 at half and at three quarters of the run), as in the SGP paper's ImageNet
  // runs: the late small steps let the gossip methods reach consensus.
  float lr(uint64_t k) const {
    double frac = static_cast<double>(k) / opt.iters;
    return static_cast<float>(kBaseLr * (frac < 0.5 ? 1.0 : frac < 0.75 ? 0.1 : 0.01));
  }

  // grad <- the mean gradient at `params` over the next mini-batch of this rank's shard.
  void gradientAt(const float* params) {
    size_t b = std::min(static_cast<size_t>(opt.batch), order.size());
    if (cursor + b > order.size()) {
      for (size_t i = order.size() - 1; i > 0; --i)
        std::swap(order[i], order[batchRng.below(i + 1)]);
      cursor = 0;
    }
    gradient(params, shard, order.data() + cursor, b, grad.data());
    cursor += b;
  }

  void applyGradient(uint64_t k) {
    float step = lr(k);
    for (size_t i = 0; i < kParams; ++i)
      x[i] -= step * grad[i];
  }
};

// A training method is one function per iteration; more (overlap SGP with a staleness bound,
// pairwise gossip) are one more function and one more row of kMethods. The optional hooks are
// for methods with state across steps, such as a gcclGossip_t bound to x: `begin` runs after
// the model is reset, `end` after the last step and before scoring, to fold in what is still
// in flight (mass left on the wire would bias the scores).
struct Method {
  const char* name;
  void (*step)(Worker& w, uint64_t k);
  void (*begin)(Worker& w);
  void (*end)(Worker& w);
};

void allreduceSgdStep(Worker& w, uint64_t k) {
  w.gradientAt(w.x.data());
  CHECK(gcclAllReduce(w.grad.data(), w.grad.data(), kParams, gcclFloat32, gcclAvg, w.comm, nullptr,
                      nullptr),
        w.comm);
  w.applyGradient(k);
}

// SGP (Assran et al., Algorithm 1): the gradient is taken at the de-biased model but applied to
// the numerator, which is what PushSum mixes.
void sgpStep(Worker& w, uint64_t k) {
  CHECK(gcclPushSumDebias(w.x.data(), w.z.data(), kParams, gcclFloat32, w.psWeight), nullptr);
  w.gradientAt(w.z.data());
  w.applyGradient(k);
  CHECK(gcclPushSum(w.x.data(), kParams, gcclFloat32, &w.psWeight, w.exponential, k, w.comm,
                    nullptr, nullptr),
        w.comm);
}

void dpsgdStep(Worker& w, uint64_t k) {
  w.gradientAt(w.x.data());
  w.applyGradient(k);
  CHECK(gcclNeighborAverage(w.x.data(), w.x.data(), kParams, gcclFloat32, w.ring, k, w.comm,
                            nullptr, nullptr),
        w.comm);
}

// Overlap SGP (Assran et al., Algorithm 2) with staleness 1: the messages of step k may be
// folded in at step k + 1, so they travel while the next gradient is computed.
constexpr int kStaleness = 1;

void osgpBegin(Worker& w) {
  CHECK(gcclGossipCreate(&w.gossip, w.x.data(), kParams, gcclFloat32, &w.psWeight, w.exponential,
                         kStaleness, w.comm),
        w.comm);
}

void osgpStep(Worker& w, uint64_t k) {
  CHECK(gcclPushSumDebias(w.x.data(), w.z.data(), kParams, gcclFloat32, w.psWeight), nullptr);
  w.gradientAt(w.z.data());
  w.applyGradient(k);
  CHECK(gcclGossipStart(w.gossip, k), nullptr);
  CHECK(gcclGossipFinish(w.gossip, k), nullptr);
}

void osgpEnd(Worker& w) {
  CHECK(gcclGossipDestroy(w.gossip), nullptr);
  w.gossip = nullptr;
}

// Pairwise gossip (SwarmSGD-style, one local step between exchanges): each rank averages with
// one random ring neighbour per step, while its own model may be averaged by a neighbour's
// request at any time; the local step holds the model's lock so a partner never sees half of it.
void pairwiseBegin(Worker& w) {
  CHECK(gcclPairwiseCreate(&w.pairwise, w.x.data(), kParams, gcclFloat32, w.ring, 1234, w.comm),
        w.comm);
}

void pairwiseStep(Worker& w, uint64_t k) {
  CHECK(gcclPairwiseLock(w.pairwise), nullptr);
  w.gradientAt(w.x.data());
  w.applyGradient(k);
  CHECK(gcclPairwiseUnlock(w.pairwise), nullptr);
  CHECK(gcclPairwiseExchange(w.pairwise, k, nullptr), nullptr);
}

void pairwiseEnd(Worker& w) {
  CHECK(gcclPairwiseDestroy(w.pairwise), nullptr);
  w.pairwise = nullptr;
}

// ---- Communication reduction (SPEC 2.6) ----

// A codec configuration: b-bit quantization in buckets of 256 parameters
// (stochastic rounding when `stochastic`), or top-k of 1%.
gcclCodecConfig_t quantized(int bits, bool stochastic) {
  gcclCodecConfig_t c = GCCL_CODEC_CONFIG_INITIALIZER;
  c.codec = gcclCodecQuantize;
  c.bits = bits;
  c.bucket = 256;
  c.rounding = stochastic ? gcclRoundStochastic : gcclRoundNearest;
  c.seed = 2024;
  return c;
}
const gcclCodecConfig_t kQ8 = quantized(8, false);
const gcclCodecConfig_t kQ8Stochastic = quantized(8, true);
const gcclCodecConfig_t kQ4Stochastic = quantized(4, true);

gcclGossipOptions_t withCodec(const gcclCodecConfig_t* c) {
  gcclGossipOptions_t o = GCCL_GOSSIP_OPTIONS_INITIALIZER;
  o.codec = c;
  return o;
}

// SGP whose messages are 8-bit quantized (the push-sum weight stays float64).
void sgpQ8Step(Worker& w, uint64_t k) {
  CHECK(gcclPushSumDebias(w.x.data(), w.z.data(), kParams, gcclFloat32, w.psWeight), nullptr);
  w.gradientAt(w.z.data());
  w.applyGradient(k);
  gcclGossipOptions_t o = withCodec(&kQ8);
  CHECK(gcclPushSumEx(w.x.data(), kParams, gcclFloat32, &w.psWeight, w.exponential, k, &o, w.comm,
                      nullptr, nullptr),
        w.comm);
}

// Local SGD (K-AVG): local steps, the exact average every K.
template <int K>
void localSgdBegin(Worker& w) {
  CHECK(gcclLocalSgdCreate(&w.localSgd, w.x.data(), kParams, gcclFloat32, K, gcclAverageAllReduce,
                           nullptr, nullptr, w.comm),
        w.comm);
}

void localSgdStep(Worker& w, uint64_t k) {
  w.gradientAt(w.x.data());
  w.applyGradient(k);
  CHECK(gcclLocalSgdStep(w.localSgd, k, nullptr), w.comm);
}

void localSgdEnd(Worker& w) {
  CHECK(gcclLocalSgdDestroy(w.localSgd), nullptr);
  w.localSgd = nullptr;
}

// SwarmSGD (Nadiradze et al.): H local steps between pairwise exchanges with a
// random ring neighbour, the models quantized on the wire (stochastic
// rounding, so that the exchange is unbiased).
constexpr uint64_t kSwarmLocalSteps = 2;

template <const gcclCodecConfig_t* Codec>
void swarmBegin(Worker& w) {
  gcclGossipOptions_t o = withCodec(Codec);
  CHECK(
      gcclPairwiseCreateEx(&w.pairwise, w.x.data(), kParams, gcclFloat32, w.ring, 1234, &o, w.comm),
      w.comm);
}

void swarmStep(Worker& w, uint64_t k) {
  CHECK(gcclPairwiseLock(w.pairwise), nullptr);
  w.gradientAt(w.x.data());
  w.applyGradient(k);
  CHECK(gcclPairwiseUnlock(w.pairwise), nullptr);
  if ((k + 1) % kSwarmLocalSteps == 0) CHECK(gcclPairwiseExchange(w.pairwise, k, nullptr), nullptr);
}

// Gradient sparsification: each rank sends the 1% largest entries of its
// gradient plus what it held back before (error feedback), summed by the
// sparse AllReduce.
void topkStep(Worker& w, uint64_t k) {
  static const gcclCodecConfig_t topk = [] {
    gcclCodecConfig_t c = GCCL_CODEC_CONFIG_INITIALIZER;
    c.codec = gcclCodecTopK;
    c.topkFraction = 0.01;
    return c;
  }();
  w.gradientAt(w.x.data());
  CHECK(gcclTopKAllReduce(w.grad.data(), w.residual.data(), kParams, &topk, gcclAvg, w.grad.data(),
                          nullptr, w.comm, nullptr),
        w.comm);
  w.applyGradient(k);
}

const Method kMethods[] = {
    {"allreduce-sgd", allreduceSgdStep, nullptr, nullptr},
    {"sgp (1-peer exp)", sgpStep, nullptr, nullptr},
    {"osgp (tau=1)", osgpStep, osgpBegin, osgpEnd},
    {"d-psgd (ring)", dpsgdStep, nullptr, nullptr},
    {"pairwise (ring)", pairwiseStep, pairwiseBegin, pairwiseEnd},
    {"local-sgd K=4", localSgdStep, localSgdBegin<4>, localSgdEnd},
    {"local-sgd K=16", localSgdStep, localSgdBegin<16>, localSgdEnd},
    {"swarm H=2 q8", swarmStep, swarmBegin<&kQ8Stochastic>, pairwiseEnd},
    {"swarm H=2 q4", swarmStep, swarmBegin<&kQ4Stochastic>, pairwiseEnd},
    {"topk 1% + EF", topkStep, nullptr, nullptr},
    {"sgp q8", sgpQ8Step, nullptr, nullptr},
};

struct Result {
  float trainLoss;   // mean over ranks of each rank's model on its own shard
  float accAverage;  // test accuracy of the average of the ranks' models
  float accMin, accMax;
  float consensus;   // mean over ranks of ||z_i - z_avg|| / ||z_avg||
  float usPerIter;   // median over iterations, slowest rank
  float kibPerIter;  // payload bytes sent per rank and iteration (mean over ranks), KiB
};

// Payload bytes this rank has sent to all its peers so far.
uint64_t bytesSent(const Worker& w) {
  uint64_t total = 0;
  for (int p = 0; p < w.nranks; ++p) {
    gcclPeerCounters_t c = GCCL_PEER_COUNTERS_INITIALIZER;
    CHECK(gcclCommGetPeerCounters(w.comm, p, &c), w.comm);
    if (p != w.rank) total += c.bytesSent;
  }
  return total;
}

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Result train(Worker& w, const Method& m, const std::vector<float>& init) {
  w.reset(init);
  if (m.begin) m.begin(w);
  std::vector<double> times;
  times.reserve(w.opt.iters);
  // Start every rank's clock together, so that no rank's first steps include waiting for the
  // others to finish evaluating the previous method.
  CHECK(gcclBarrier(w.comm, nullptr, nullptr), w.comm);
  const uint64_t bytesBefore = bytesSent(w);
  for (int k = 0; k < w.opt.iters; ++k) {
    double t0 = seconds();
    m.step(w, static_cast<uint64_t>(k));
    times.push_back(seconds() - t0);
  }
  if (m.end) m.end(w);
  // Counted before the scoring below sends anything.
  float kib =
      static_cast<float>(static_cast<double>(bytesSent(w) - bytesBefore) / w.opt.iters / 1024.0);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());

  CHECK(gcclPushSumDebias(w.x.data(), w.z.data(), kParams, gcclFloat32, w.psWeight), nullptr);
  std::vector<float> average(kParams);
  CHECK(gcclAllReduce(w.z.data(), average.data(), kParams, gcclFloat32, gcclAvg, w.comm, nullptr,
                      nullptr),
        w.comm);
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < kParams; ++i) {
    double d = static_cast<double>(w.z[i]) - average[i];
    diff += d * d;
    norm += static_cast<double>(average[i]) * average[i];
  }
  Score own = evaluate(w.z.data(), w.test);
  // Reduced together: one call per reduction instead of one per number.
  float means[3] = {evaluate(w.z.data(), w.shard).loss, static_cast<float>(std::sqrt(diff / norm)),
                    kib};
  float mins[1] = {own.accuracy};
  float maxes[2] = {own.accuracy, static_cast<float>(times[times.size() / 2] * 1e6)};
  CHECK(gcclAllReduce(means, means, 3, gcclFloat32, gcclAvg, w.comm, nullptr, nullptr), w.comm);
  CHECK(gcclAllReduce(mins, mins, 1, gcclFloat32, gcclMin, w.comm, nullptr, nullptr), w.comm);
  CHECK(gcclAllReduce(maxes, maxes, 2, gcclFloat32, gcclMax, w.comm, nullptr, nullptr), w.comm);
  // AllReduce results are bit-identical on every rank, so every rank scores the same average
  // model and reaches the same verdict below.
  return {
      means[0], evaluate(average.data(), w.test).accuracy, mins[0], maxes[0], means[1], maxes[1],
      means[2]};
}

bool parseArgs(int argc, char** argv, Options* o, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag != "--iters" && flag != "--batch" && flag != "--seed" && flag != "--faults") {
      *error = "unknown argument '" + flag + "'";
      return false;
    }
    if (i + 1 >= argc) {
      *error = flag + " needs a value";
      return false;
    }
    char* end = nullptr;
    errno = 0;
    long long v = strtoll(argv[++i], &end, 10);
    bool zeroOk = flag == "--seed" || flag == "--faults";
    if (errno != 0 || end == argv[i] || *end != '\0' || v < (zeroOk ? 0 : 1) ||
        (flag != "--seed" && v > 100000000)) {
      *error = flag + ": '" + argv[i] + "' is not a valid value";
      return false;
    }
    if (flag == "--iters") o->iters = static_cast<int>(v);
    if (flag == "--batch") o->batch = static_cast<int>(v);
    if (flag == "--seed") o->seed = static_cast<uint64_t>(v);
    if (flag == "--faults") o->faults = static_cast<int>(v);
  }
  return true;
}

// gcclrun stops every rank as soon as one exits with an error, so no rank may leave before
// rank 0 has written its explanation.
void finish(gcclComm_t comm) {
  fflush(stdout);
  CHECK(gcclBarrier(comm, nullptr, nullptr), comm);
  CHECK(gcclCommDestroy(comm), nullptr);
}

// --faults K: SGP in fault-tolerant mode; the last K ranks die halfway.
int faultRun(Worker& w, const std::vector<float>& init) {
  const int k = w.opt.faults;
  if (k * 2 >= w.nranks) {
    if (w.rank == 0) fprintf(stderr, "sgp_demo: --faults %d needs more than %d ranks\n", k, 2 * k);
    finish(w.comm);
    return 2;
  }
  const bool victim = w.rank >= w.nranks - k;
  const int half = w.opt.iters / 2;
  w.reset(init);
  CHECK(gcclBarrier(w.comm, nullptr, nullptr), w.comm);
  std::vector<double> times;
  double slowestAfter = 0;
  for (int it = 0; it < w.opt.iters; ++it) {
    if (victim && it == half) raise(SIGKILL);
    double t0 = seconds();
    sgpStep(w, static_cast<uint64_t>(it));
    double dt = seconds() - t0;
    times.push_back(dt);
    if (it >= half) slowestAfter = std::max(slowestAfter, dt);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  // Scoring needs exact collectives: on the survivors' own communicator.
  gcclComm_t survivors = w.comm;
  if (k > 0) CHECK(gcclCommShrink(w.comm, nullptr, &survivors), w.comm);
  int failed = 0;
  CHECK(gcclCommGetFailedRanks(w.comm, nullptr, 0, &failed), w.comm);
  CHECK(gcclPushSumDebias(w.x.data(), w.z.data(), kParams, gcclFloat32, w.psWeight), nullptr);
  std::vector<float> average(kParams);
  CHECK(gcclAllReduce(w.z.data(), average.data(), kParams, gcclFloat32, gcclAvg, survivors, nullptr,
                      nullptr),
        survivors);
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < kParams; ++i) {
    double d = static_cast<double>(w.z[i]) - average[i];
    diff += d * d;
    norm += static_cast<double>(average[i]) * average[i];
  }
  float own = evaluate(w.z.data(), w.test).accuracy;
  float mins[1] = {own};
  float maxes[3] = {own, static_cast<float>(times[times.size() / 2] * 1e6),
                    static_cast<float>(slowestAfter * 1e3)};
  float means[1] = {static_cast<float>(std::sqrt(diff / norm))};
  CHECK(gcclAllReduce(mins, mins, 1, gcclFloat32, gcclMin, survivors, nullptr, nullptr), survivors);
  CHECK(gcclAllReduce(maxes, maxes, 3, gcclFloat32, gcclMax, survivors, nullptr, nullptr),
        survivors);
  CHECK(gcclAllReduce(means, means, 1, gcclFloat32, gcclAvg, survivors, nullptr, nullptr),
        survivors);
  int me = 0, left = 0;
  CHECK(gcclCommUserRank(survivors, &me), survivors);
  CHECK(gcclCommCount(survivors, &left), survivors);
  if (me == 0) {
    printf("# fault run: SGP on %d ranks in fault-tolerant mode, %d killed at iteration %d of %d\n",
           w.nranks, k, half, w.opt.iters);
    printf("# %-10s %9s %9s %9s %10s %11s %18s\n", "survivors", "acc(avg)", "acc(min)", "acc(max)",
           "consensus", "us/iter", "slowest-after(ms)");
    printf("  %-10d %9.2f %9.2f %9.2f %10.2e %11.1f %18.1f\n", left,
           evaluate(average.data(), w.test).accuracy, mins[0], maxes[0], means[0], maxes[1],
           maxes[2]);
    if (failed != k)
      fprintf(stderr, "sgp_demo: %d ranks were killed but %d are listed failed\n", k, failed);
    fflush(stdout);
  }
  CHECK(gcclTopologyDestroy(w.exponential), nullptr);
  CHECK(gcclTopologyDestroy(w.ring), nullptr);
  finish(survivors);
  if (survivors != w.comm) CHECK(gcclCommDestroy(w.comm), nullptr);
  return failed == k ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Worker w;
  // The fault run needs fault-tolerant mode from the start.
  gcclConfig_t config = GCCL_CONFIG_INITIALIZER;
  for (int i = 1; i < argc; ++i)
    if (strcmp(argv[i], "--faults") == 0) config.faultTolerant = 1;
  CHECK(gcclCommInitFromEnv(&w.comm, &config), nullptr);
  CHECK(gcclCommUserRank(w.comm, &w.rank), w.comm);
  CHECK(gcclCommCount(w.comm, &w.nranks), w.comm);
  std::string error;
  if (!parseArgs(argc, argv, &w.opt, &error)) {
    if (w.rank == 0)
      fprintf(stderr,
              "sgp_demo: %s\nusage: sgp_demo [--iters N] [--batch N] [--seed N] [--faults K]\n",
              error.c_str());
    finish(w.comm);
    return 2;
  }
  makeData(w.opt.seed, w.rank, w.nranks, &w.shard, &w.test);
  CHECK(gcclTopologyCreate(&w.exponential, gcclTopoExponential, w.nranks, 1), nullptr);
  CHECK(gcclTopologyCreate(&w.ring, gcclTopoRing, w.nranks, 1), nullptr);
  CHECK(gcclTopologyValidate(w.exponential, gcclMixColumnStochastic), nullptr);
  CHECK(gcclTopologyValidate(w.ring, gcclMixDoublyStochastic), nullptr);
  const std::vector<float> init = initialModel(w.opt.seed);
  if (w.opt.faults >= 0) return faultRun(w, init);

  if (w.rank == 0) {
    printf("# gccl SGP demo: %d ranks, MLP %zu-%zu-%zu (%zu float32 parameters)\n", w.nranks, kDim,
           kHidden, kClasses, kParams);
    printf(
        "# %zu training samples (%zu on rank 0), %zu test samples, %d iterations, batch %d per "
        "rank, lr %.2g stepped down x0.1 at 50%% and 75%%, seed %llu\n",
        kTrainSamples, w.shard.size(), kTestSamples, w.opt.iters, w.opt.batch, kBaseLr,
        static_cast<unsigned long long>(w.opt.seed));
    printf(
        "# acc(avg): test accuracy of the average of the ranks' models; acc(min), acc(max): of "
        "the ranks' own (de-biased) models\n# consensus: mean over ranks of ||z_i - z_avg|| / "
        "||z_avg||; us/iter: median time per iteration of the slowest rank\n# KiB/iter: payload "
        "bytes each rank sent per iteration (mean over ranks)\n");
    printf("# %-18s %10s %9s %9s %9s %10s %11s %9s\n", "method", "train-loss", "acc(avg)",
           "acc(min)", "acc(max)", "consensus", "us/iter", "KiB/iter");
    fflush(stdout);
  }
  std::vector<Result> results;
  for (const Method& m : kMethods) {
    Result r = train(w, m, init);
    results.push_back(r);
    if (w.rank == 0) {
      printf("  %-18s %10.4f %9.2f %9.2f %9.2f %10.2e %11.1f %9.2f\n", m.name, r.trainLoss,
             r.accAverage, r.accMin, r.accMax, r.consensus, r.usPerIter, r.kibPerIter);
      fflush(stdout);
    }
  }

  // The smoke test: SGP's test accuracy, of the average model and of every rank's own, must be
  // within one point of AllReduce SGD's (the SGP paper's claim at this scale).
  const Result& ar = results[0];
  const Result& sgp = results[1];
  float worst =
      std::max({std::fabs(sgp.accAverage - ar.accAverage), std::fabs(sgp.accMin - ar.accAverage),
                std::fabs(sgp.accMax - ar.accAverage)});
  bool ok = worst <= 1.0f;
  if (w.rank == 0) {
    printf(
        "# check: SGP test accuracy %.2f%% (ranks %.2f..%.2f%%) vs AllReduce SGD %.2f%%: "
        "%s (largest gap %.2f points, limit 1)\n",
        sgp.accAverage, sgp.accMin, sgp.accMax, ar.accAverage, ok ? "ok" : "FAILED", worst);
    if (!ok)
      fprintf(stderr, "sgp_demo: SGP's accuracy is more than 1 point away from AllReduce SGD's\n");
  }
  // The communication-reduction methods, against the same reference (reported, not enforced:
  // a target of the codec work, within half a point).
  if (w.rank == 0) {
    for (size_t i = 5; i < results.size(); ++i) {
      float gap = results[i].accAverage - ar.accAverage;
      printf("# %-18s accuracy %+.2f points vs AllReduce SGD, %.1fx fewer bytes per iteration\n",
             kMethods[i].name, gap,
             results[i].kibPerIter > 0 ? ar.kibPerIter / results[i].kibPerIter : 0.0f);
    }
  }
  CHECK(gcclTopologyDestroy(w.exponential), nullptr);
  CHECK(gcclTopologyDestroy(w.ring), nullptr);
  finish(w.comm);
  return ok ? 0 : 1;
}

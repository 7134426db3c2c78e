// sgp_bench: the SGP paper's timing experiment in miniature. Every iteration
// is a synthetic compute phase followed by the averaging of a model-sized
// buffer, with one of three methods:
//
//   allreduce  compute, then a blocking gcclAllReduce (sum, then / n): the
//              exact data-parallel step;
//   pushsum    compute, then one blocking gcclPushSum step on the one-peer
//              exponential graph (SGP);
//   osgp       gcclGossipStart, compute, gcclGossipFinish: overlap SGP, the
//              step's messages travel while the rank computes (staleness -t).
//
// Compute is emulated by sleeping (a straggler rank sleeps -F times longer):
// ranks outnumber cores on a small machine, and busy compute would measure
// the CPU scheduler rather than the network.
//
// Launch with gcclrun, mpirun or perf/netem/netem.sh (network namespaces
// with shaped links and emulated latency). Rank 0 prints one row per method:
// the mean and max over ranks of seconds per iteration. A check runs after
// each method: AllReduce must give the exact average; for PushSum and overlap
// SGP the sum over ranks of x and of the push-sum weights must be conserved.
// Exits non-zero on a failed check.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gccl/gccl.h"

namespace {

struct Options {
  std::vector<std::string> methods{"allreduce", "pushsum", "osgp"};
  size_t bytes = 4 << 20;
  double computeMs = 50;
  int iters = 10;
  int warmup = 2;
  int straggler = -1;
  double stragglerFactor = 2.0;
  int staleness = 1;
  std::string label;
};

[[noreturn]] void usage(const char* why) {
  fprintf(
      stderr,
      "sgp_bench: %s\n"
      "usage: sgp_bench [-m allreduce,pushsum,osgp] [-b bytes (k/M suffix)] [-c compute ms]\n"
      "                 [-i iters] [-w warmup] [-S straggler rank] [-F slowdown] [-t staleness]\n"
      "                 [-l label]\n",
      why);
  exit(2);
}

size_t parseSize(const char* s) {
  char* end = nullptr;
  double v = strtod(s, &end);
  if (end == s || v < 0) usage((std::string("bad size ") + s).c_str());
  if (*end == 'k' || *end == 'K') v *= 1024;
  if (*end == 'm' || *end == 'M') v *= 1024 * 1024;
  if (*end == 'g' || *end == 'G') v *= 1024.0 * 1024 * 1024;
  return static_cast<size_t>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char* v = argv[++i];
    if (a == "-m") {
      o.methods.clear();
      std::string list = v;
      for (size_t p = 0; p <= list.size();) {
        size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        std::string m = list.substr(p, q - p);
        if (m != "allreduce" && m != "pushsum" && m != "osgp")
          usage(("unknown method " + m).c_str());
        o.methods.push_back(m);
        p = q + 1;
      }
    } else if (a == "-b") {
      o.bytes = parseSize(v);
    } else if (a == "-c") {
      o.computeMs = atof(v);
    } else if (a == "-i") {
      o.iters = atoi(v);
    } else if (a == "-w") {
      o.warmup = atoi(v);
    } else if (a == "-S") {
      o.straggler = atoi(v);
    } else if (a == "-F") {
      o.stragglerFactor = atof(v);
    } else if (a == "-t") {
      o.staleness = atoi(v);
    } else if (a == "-l") {
      o.label = v;
    } else {
      usage(("unknown flag " + a).c_str());
    }
  }
  if (o.iters < 1 || o.warmup < 0 || o.computeMs < 0 || o.stragglerFactor <= 0)
    usage("iterations must be >= 1, warm-up, compute and slowdown non-negative");
  return o;
}

void check(gcclResult_t r, const char* what, gcclComm_t comm) {
  if (r == gcclSuccess) return;
  const char* why = gcclGetLastError(comm);
  if (why == nullptr || *why == '\0') why = gcclGetLastError(nullptr);
  fprintf(stderr, "sgp_bench: %s failed: %s: %s\n", what, gcclGetErrorString(r), why);
  exit(1);
}
#define CHECK(call, comm) check((call), #call, (comm))

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Run {
  gcclComm_t comm;
  int rank, nranks;
  const Options& opt;
  std::vector<float> x;
  double weight = 1;
  gcclTopology_t topo = nullptr;

  void compute() const {
    double ms = opt.computeMs * (rank == opt.straggler ? opt.stragglerFactor : 1.0);
    if (ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
  }

  // Rank-dependent start: rank r holds r + 1 everywhere.
  void reset() {
    std::fill(x.begin(), x.end(), static_cast<float>(rank + 1));
    weight = 1;
  }

  // Runs warm-up + timed iterations of `method`; returns this rank's seconds
  // per timed iteration.
  double time(const std::string& method) {
    reset();
    gcclGossip_t gossip = nullptr;
    if (method == "osgp")
      CHECK(gcclGossipCreate(&gossip, x.data(), x.size(), gcclFloat32, &weight, topo, opt.staleness,
                             comm),
            comm);
    CHECK(gcclBarrier(comm, nullptr, nullptr), comm);
    double t0 = 0;
    for (int it = 0; it < opt.warmup + opt.iters; ++it) {
      if (it == opt.warmup) t0 = now();
      auto step = static_cast<uint64_t>(it);
      if (method == "allreduce") {
        compute();
        CHECK(gcclAllReduce(x.data(), x.data(), x.size(), gcclFloat32, gcclAvg, comm, nullptr,
                            nullptr),
              comm);
      } else if (method == "pushsum") {
        compute();
        CHECK(gcclPushSum(x.data(), x.size(), gcclFloat32, &weight, topo, step, comm, nullptr,
                          nullptr),
              comm);
      } else {
        CHECK(gcclGossipStart(gossip, step), comm);
        compute();
        CHECK(gcclGossipFinish(gossip, step), comm);
      }
    }
    double perIter = (now() - t0) / opt.iters;
    if (gossip != nullptr) CHECK(gcclGossipDestroy(gossip), comm);
    return perIter;
  }

  // Returns the number of failed checks (the same on every rank).
  int verify(const std::string& method) {
    double n = nranks;
    if (method == "allreduce") {
      // Averaging a constant keeps it: (n + 1) / 2 everywhere, exactly in float32 for small n.
      float want = static_cast<float>((n + 1) / 2);
      size_t bad = 0;
      for (float v : x)
        bad += v != want;
      double badAll = static_cast<double>(bad);
      CHECK(gcclAllReduce(&badAll, &badAll, 1, gcclFloat64, gcclSum, comm, nullptr, nullptr), comm);
      if (badAll != 0 && rank == 0)
        fprintf(stderr, "sgp_bench: allreduce: %.0f elements differ from %g\n", badAll, want);
      return badAll != 0;
    }
    // Mass conservation: sum over ranks of x[0] and of w, against n(n+1)/2 and n.
    double sums[2] = {x.empty() ? 0.0 : static_cast<double>(x[0]), weight};
    CHECK(gcclAllReduce(sums, sums, 2, gcclFloat64, gcclSum, comm, nullptr, nullptr), comm);
    double wantX = x.empty() ? 0.0 : n * (n + 1) / 2, wantW = n;
    bool ok = std::fabs(sums[0] - wantX) <= 1e-4 * wantX && std::fabs(sums[1] - wantW) <= 1e-9 * n;
    if (!ok && rank == 0)
      fprintf(stderr, "sgp_bench: %s: sum of x %.9g (want %.9g), sum of w %.12g (want %.0f)\n",
              method.c_str(), sums[0], wantX, sums[1], wantW);
    return ok ? 0 : 1;
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  gcclComm_t comm = nullptr;
  CHECK(gcclCommInitFromEnv(&comm, nullptr), nullptr);
  int rank = 0, nranks = 1;
  CHECK(gcclCommUserRank(comm, &rank), comm);
  CHECK(gcclCommCount(comm, &nranks), comm);
  if (opt.straggler >= nranks) usage("straggler rank out of range");

  Run run{comm, rank, nranks, opt, std::vector<float>(opt.bytes / sizeof(float)), 1, nullptr};
  CHECK(gcclTopologyCreate(&run.topo, gcclTopoExponential, nranks, 1), comm);

  if (rank == 0)
    printf(
        "# sgp_bench: %d ranks, %zu bytes, compute %.1f ms, straggler %d (x%.1f), staleness "
        "%d%s%s\n"
        "# %-10s %6s %12s %14s %14s %6s\n",
        nranks, opt.bytes, opt.computeMs, opt.straggler, opt.stragglerFactor, opt.staleness,
        opt.label.empty() ? "" : ", ", opt.label.c_str(), "method", "ranks", "bytes", "mean s/itr",
        "max s/itr", "check");
  int failed = 0;
  for (const std::string& m : opt.methods) {
    double t[2] = {run.time(m), 0};
    t[1] = t[0];
    double sum = t[0], mx = t[1];
    CHECK(gcclAllReduce(&sum, &sum, 1, gcclFloat64, gcclSum, comm, nullptr, nullptr), comm);
    CHECK(gcclAllReduce(&mx, &mx, 1, gcclFloat64, gcclMax, comm, nullptr, nullptr), comm);
    int bad = run.verify(m);
    failed += bad;
    if (rank == 0) {
      printf("  %-10s %6d %12zu %14.4f %14.4f %6s\n", m.c_str(), nranks, opt.bytes, sum / nranks,
             mx, bad ? "FAIL" : "ok");
      fflush(stdout);
    }
  }
  gcclTopologyDestroy(run.topo);
  CHECK(gcclCommDestroy(comm), nullptr);
  return failed == 0 ? 0 : 1;
}

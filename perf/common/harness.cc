// The driver every <collective>_perf binary shares: nccl-tests' loop (per
// type, op and root: warm-up at the largest and smallest size, then per size
// an out-of-place and an in-place measurement, each followed by its checked
// iterations), its timing rules and its output format.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/data.h"
#include "common/options.h"
#include "common/perf.h"
#include "common/sweep.h"

namespace gperf {

namespace {

uint64_t seedFor(size_t bytes, bool inPlace, int rep) {
  return (static_cast<uint64_t>(bytes) << 8) ^ (inPlace ? 0x5a5a : 0) ^
         (static_cast<uint64_t>(rep) << 40) ^ 0x243f6a8885a308d3ull;
}

class Runner {
 public:
  Runner(const Collective& coll, const Options& opt, const Bench& bench)
      : coll_(coll), opt_(opt), b_(bench) {
    size_t bytes = opt.maxBytes + 64;
    send_ = static_cast<char*>(allocTouched(bytes));
    recv_ = static_cast<char*>(allocTouched(bytes));
    if (opt.check > 0) {
      sendCopy_ = static_cast<char*>(allocTouched(bytes));
      recvCopy_ = static_cast<char*>(allocTouched(bytes));
    }
  }
  ~Runner() {
    free(send_);
    free(recv_);
    free(sendCopy_);
    free(recvCopy_);
  }

  void series(gcclDataType_t type, gcclRedOp_t op, int root);

  int failedTests() const { return failedTests_; }
  double avgBusBw() const { return bwCount_ > 0 ? bwSum_ / bwCount_ : 0; }

 private:
  Call makeCall(size_t bytes, gcclDataType_t type, gcclRedOp_t op, int root, bool inPlace) const;
  void issue(Call& c, std::vector<gcclRequest_t>* requests);
  void complete(std::vector<gcclRequest_t>* requests);
  double run(Call c, int iters, double* cpuSeconds);
  void fillInput(const Call& c);
  size_t checkOnce(Call c, int rep);
  void measure(size_t bytes, gcclDataType_t type, gcclRedOp_t op, int root, bool inPlace);
  // Whether calls block (-z 1 and 2) rather than take requests (-z 0).
  bool blocking() const { return opt_.blocking != Blocking::kNo; }
  void print(const char* fmt, const std::string& s) const {
    if (b_.rank == 0) printf(fmt, s.c_str());
  }

  const Collective& coll_;
  const Options& opt_;
  const Bench& b_;
  char* send_ = nullptr;
  char* recv_ = nullptr;
  char* sendCopy_ = nullptr;
  char* recvCopy_ = nullptr;
  uint64_t step_ = 0;
  int rep_ = 0;
  int failedTests_ = 0;
  double bwSum_ = 0;
  int bwCount_ = 0;
  double wireBytes_ = 0;  // payload bytes this rank sent per call in the last run()
  double rowWire_ = 0;    // the out-of-place measurement's, mean over ranks
};

// Payload bytes this rank has sent to the other ranks so far.
uint64_t bytesSentToPeers(const Bench& b) {
  uint64_t total = 0;
  for (int p = 0; p < b.nranks; ++p) {
    if (p == b.rank) continue;
    gcclPeerCounters_t c = GCCL_PEER_COUNTERS_INITIALIZER;
    checkOrDie(gcclCommGetPeerCounters(b.comm, p, &c), "gcclCommGetPeerCounters", &b);
    total += c.bytesSent;
  }
  return total;
}

Call Runner::makeCall(size_t bytes, gcclDataType_t type, gcclRedOp_t op, int root,
                      bool inPlace) const {
  Call c;
  const size_t ts = typeSize(type);
  coll_.layout(bytes / ts, b_.nranks, &c.layout);
  const size_t r = static_cast<size_t>(b_.rank);
  c.send = inPlace ? recv_ + r * c.layout.sendInPlaceOffset * ts : send_;
  c.recv = inPlace ? recv_ + r * c.layout.recvInPlaceOffset * ts : recv_;
  c.type = type;
  c.op = op;
  c.root = root;
  c.inPlace = inPlace;
  c.gen.nranks = b_.nranks;
  c.gen.range = coll_.valueRange > 0 ? coll_.valueRange : defaultRange(type, op, b_.nranks);
  c.gen.nonNegative = type == gcclUint8 || type == gcclUint32 || type == gcclUint64;
  c.gen.product = coll_.hasOp && op == gcclProd;
  return c;
}

void Runner::issue(Call& c, std::vector<gcclRequest_t>* requests) {
  // Every rank advances the step alike, so gossip graphs match across ranks.
  c.step = step_++;
  checkOrDie(coll_.issue(b_, c, requests), coll_.name, &b_);
}

void Runner::complete(std::vector<gcclRequest_t>* requests) {
  for (gcclRequest_t r : *requests)
    checkOrDie(gcclWait(r), "gcclWait", &b_);
  requests->clear();
}

// `iters` iterations of aggIters calls each, as nccl-tests times them: all
// started back to back, then waited for (-z 0), or each completed and
// followed by a barrier (-z 1); or each completed and the next issued at once
// (-z 2, how the peer harnesses of perf/compare time blocking calls).
// Returns the seconds per call.
double Runner::run(Call c, int iters, double* cpuSeconds) {
  std::vector<gcclRequest_t> requests;
  std::vector<gcclRequest_t>* rq = blocking() ? nullptr : &requests;
  const bool grouped = opt_.aggIters > 1;
  const uint64_t sentBefore = bytesSentToPeers(b_);
  double t0 = now();
  for (int it = 0; it < iters; ++it) {
    if (grouped) checkOrDie(gcclGroupStart(), "gcclGroupStart", &b_);
    for (int a = 0; a < opt_.aggIters; ++a)
      issue(c, rq);
    if (grouped) checkOrDie(gcclGroupEnd(), "gcclGroupEnd", &b_);
    if (opt_.blocking == Blocking::kWithBarrier)
      checkOrDie(gcclBarrier(b_.comm, nullptr, nullptr), "gcclBarrier", &b_);
  }
  double calls = std::max(1.0, static_cast<double>(iters) * opt_.aggIters);
  if (cpuSeconds != nullptr) *cpuSeconds = (now() - t0) / calls;
  complete(&requests);
  double seconds = (now() - t0) / calls;
  wireBytes_ = static_cast<double>(bytesSentToPeers(b_) - sentBefore) / calls;
  return seconds;
}

void Runner::fillInput(const Call& c) {
  constexpr size_t kChunk = 1024;
  double v[kChunk];
  const size_t ts = typeSize(c.type);
  char* dst = static_cast<char*>(const_cast<void*>(c.send));
  for (size_t b = 0; b < c.layout.sendCount; b += kChunk) {
    size_t m = std::min(kChunk, c.layout.sendCount - b);
    for (size_t k = 0; k < m; ++k)
      v[k] = inputValue(c.gen, b_.rank, b + k);
    storeValues(c.type, dst + b * ts, m, v);
  }
}

// One checked call with fresh input into a poisoned output. Returns this
// rank's wrong elements: results off their expected value, an output that
// must not change but did, and (out of place) a changed send buffer.
size_t Runner::checkOnce(Call c, int rep) {
  const size_t ts = typeSize(c.type);
  const Layout& l = c.layout;
  c.gen.seed = seedFor(0, c.inPlace, rep);
  c.checked = true;
  fillPoison(c.type, c.recv, l.recvCount);
  fillInput(c);  // in place, this overwrites the poison where the input lives
  const bool keepSend = !c.inPlace && coll_.sendUnchanged;
  const bool written = coll_.outputWritten == nullptr || coll_.outputWritten(b_, c);
  if (keepSend) memcpy(sendCopy_, c.send, l.sendCount * ts);
  if (!written) memcpy(recvCopy_, c.recv, l.recvCount * ts);

  std::vector<gcclRequest_t> requests;
  issue(c, blocking() ? nullptr : &requests);
  complete(&requests);

  size_t wrong = 0;
  if (written) {
    const bool exact = coll_.exact && !(isFloating(c.type) && c.op == gcclAvg && coll_.hasOp);
    // A lossy codec adds its error, on the received and on the kept share.
    const double codecTol = 2 * codecError(opt_.codec, static_cast<double>(c.gen.range));
    const double tol =
        exact && codecTol == 0
            ? 0
            : 4 * typeEpsilon(c.type) * std::max<double>(1, static_cast<double>(c.gen.range)) +
                  codecTol;
    constexpr size_t kChunk = 1024;
    double expect[kChunk];
    for (size_t b = 0; b < l.recvCount; b += kChunk) {
      size_t m = std::min(kChunk, l.recvCount - b);
      coll_.expected(b_, c, b, m, expect);
      wrong += countWrong(c.type, static_cast<char*>(c.recv) + b * ts, m, expect, tol);
    }
  } else {
    wrong += countChanged(c.recv, recvCopy_, l.recvCount, ts);
  }
  if (keepSend) wrong += countChanged(c.send, sendCopy_, l.sendCount, ts);
  if (coll_.checkExtra != nullptr) wrong += coll_.checkExtra(b_, c);
  return wrong;
}

void Runner::measure(size_t bytes, gcclDataType_t type, gcclRedOp_t op, int root, bool inPlace) {
  Call c = makeCall(bytes, type, op, root, inPlace);
  const size_t ts = typeSize(type);
  if (opt_.check > 0) {
    c.gen.seed = seedFor(bytes, inPlace, -1);
    fillInput(c);
  }
  // One untimed call, so that the timed loop starts with every rank ready.
  run(c, 1, nullptr);
  checkOrDie(gcclBarrier(b_.comm, nullptr, nullptr), "gcclBarrier", &b_);
  double cpu = 0;
  double sec = run(c, opt_.iters, &cpu);
  if (opt_.reportCpuTime) sec = cpu;
  if (!inPlace) {
    rowWire_ = wireBytes_;
    checkOrDie(
        gcclAllReduce(&rowWire_, &rowWire_, 1, gcclFloat64, gcclSum, b_.comm, nullptr, nullptr),
        "gcclAllReduce (wire bytes)", &b_);
    rowWire_ /= b_.nranks;
  }
  if (opt_.average != 0) {
    static const gcclRedOp_t kCombine[] = {gcclSum, gcclSum, gcclMin, gcclMax};
    checkOrDie(gcclAllReduce(&sec, &sec, 1, gcclFloat64, kCombine[opt_.average], b_.comm, nullptr,
                             nullptr),
               "gcclAllReduce (timing)", &b_);
    if (opt_.average == 1) sec /= b_.nranks;
  }
  const Layout& l = c.layout;
  double algBw = static_cast<double>(std::max(l.sendCount, l.recvCount) * ts) / 1e9 / sec;
  double busBw = algBw * coll_.busFactor(b_.nranks);

  // Counts summed over ranks: wrong elements, and ranks that saw any.
  int64_t wrong[2] = {0, 0};
  for (int rep = 0; rep < opt_.check; ++rep) {
    int64_t local = static_cast<int64_t>(checkOnce(c, rep_++));
    int64_t counts[2] = {local, local > 0 ? 1 : 0};
    checkOrDie(gcclAllReduce(counts, counts, 2, gcclInt64, gcclSum, b_.comm, nullptr, nullptr),
               "gcclAllReduce (check)", &b_);
    wrong[0] = counts[0];
    wrong[1] = counts[1];
    if (counts[0] > 0) break;
  }
  failedTests_ += static_cast<int>(wrong[1]);
  print("%s", rowResults(sec, algBw, busBw, opt_.check, wrong[0]));
  bwSum_ += busBw;
  ++bwCount_;
}

void Runner::series(gcclDataType_t type, gcclRedOp_t op, int root) {
  checkOrDie(gcclBarrier(b_.comm, nullptr, nullptr), "gcclBarrier", &b_);
  for (size_t bytes : {opt_.maxBytes, opt_.minBytes})
    run(makeCall(bytes, type, op, root, false), opt_.warmupIters, nullptr);
  const size_t ts = typeSize(type);
  forEachSize(opt_, [&](size_t bytes) {
    Layout l;
    coll_.layout(bytes / ts, b_.nranks, &l);
    print("%s", rowLabels(std::max(l.sendCount, l.recvCount) * ts, l.paramCount, typeName(type),
                          coll_.hasOp ? opName(op) : "none", coll_.hasRoot ? root : -1));
    measure(bytes, type, op, root, false);
    measure(bytes, type, op, root, true);
    char wire[32];
    snprintf(wire, sizeof(wire), "  %10.0f", rowWire_);
    print("%s\n", wire);
    if (b_.rank == 0) fflush(stdout);
  });
}

void printHeader(const Collective& coll, const Options& opt, const Bench& b) {
  char line[512];
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  int version = 0;
  gcclGetVersion(&version);
  snprintf(line, sizeof(line),
           "#  Rank %2d Group  0 Pid %6d on %10s device cpu [host memory] gccl %d.%d.%d\n", b.rank,
           static_cast<int>(getpid()), host, version / 10000, version / 100 % 100, version % 100);
  std::vector<char> lines(sizeof(line) * static_cast<size_t>(b.nranks));
  checkOrDie(gcclAllGather(line, lines.data(), sizeof(line), gcclInt8, b.comm, nullptr, nullptr),
             "gcclAllGather (header)", &b);
  if (b.rank != 0) return;
  printTestStart((std::string(coll.name) + "_perf").c_str(), opt, opt.aggIters);
  if (!underLauncher())
    printf("# No launcher environment: 1 rank (start more with mpirun -np N or gcclrun -n N)\n");
  printf("#\n# Using devices\n");
  for (int r = 0; r < b.nranks; ++r)
    printf("%s", lines.data() + sizeof(line) * static_cast<size_t>(r));
  printf("#\n");
  if (coll.describe != nullptr) {
    for (const std::string& s : coll.describe(b))
      printf("# %s\n", s.c_str());
    printf("#\n");
  }
  if (opt.codec.codec != gcclCodecNone) printf("# codec: %s\n#\n", opt.codecName.c_str());
  printColumnHeader(true, opt.reportCpuTime ? "cputime" : "time", true);
  fflush(stdout);
}

gcclComm_t gComm = nullptr;

}  // namespace

gcclGossipOptions_t gossipOptions(const Bench& b) {
  gcclGossipOptions_t o = GCCL_GOSSIP_OPTIONS_INITIALIZER;
  if (b.options->codec.codec != gcclCodecNone) o.codec = &b.options->codec;
  return o;
}

void checkOrDie(gcclResult_t r, const char* what, const Bench* b) {
  if (r == gcclSuccess) return;
  // Calls without a communicator (topologies) keep their reason per thread.
  const char* why = gComm != nullptr ? gcclGetLastError(gComm) : "";
  if (why == nullptr || *why == '\0') why = gcclGetLastError(nullptr);
  fprintf(stderr, "perf: rank %d: %s failed: %s: %s\n", b != nullptr ? b->rank : -1, what,
          gcclGetErrorString(r), why);
  // Tell the other ranks at once rather than let them wait for a deadline.
  if (gComm != nullptr) gcclCommAbort(gComm);
  exit(1);
}

int perfMain(int argc, char** argv, const Collective& coll) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  Options opt;
  int status = parseOptions(argc, argv, coll, &opt);
  if (status >= 0) return status;
  if (opt.aggIters > 1 && !coll.groupable) {
    if (launcherRankIsZero())
      fprintf(stderr, "%s_perf: -m must be 1: %s cannot group several calls\n", coll.name,
              coll.name);
    return 2;
  }

  Bench b;
  b.options = &opt;
  if (underLauncher()) {
    checkOrDie(gcclCommInitFromEnv(&b.comm, nullptr), "gcclCommInitFromEnv", nullptr);
  } else {
    // Started by hand, like a single-process nccl-tests run: one rank.
    gcclUniqueId id;
    checkOrDie(gcclGetUniqueId(&id), "gcclGetUniqueId", nullptr);
    checkOrDie(gcclCommInitRank(&b.comm, 1, id, 0), "gcclCommInitRank", nullptr);
  }
  gComm = b.comm;
  checkOrDie(gcclCommUserRank(b.comm, &b.rank), "gcclCommUserRank", &b);
  checkOrDie(gcclCommCount(b.comm, &b.nranks), "gcclCommCount", &b);
  if (opt.roots.empty())
    for (int r = 0; r < b.nranks; ++r)
      opt.roots.push_back(r);
  for (int root : opt.roots)
    if (coll.hasRoot && root >= b.nranks) {
      if (b.rank == 0)
        fprintf(stderr, "%s_perf: invalid root %d for -r: there are %d ranks (0 to %d)\n",
                coll.name, root, b.nranks, b.nranks - 1);
      gcclCommDestroy(b.comm);
      return 2;
    }
  if (coll.setup != nullptr) checkOrDie(coll.setup(b), "setup", &b);

  printHeader(coll, opt, b);
  int failed = 0;
  double avgBw = 0;
  {
    Runner runner(coll, opt, b);
    const std::vector<gcclRedOp_t> ops = coll.hasOp ? opt.ops : std::vector<gcclRedOp_t>{gcclSum};
    const std::vector<int> roots = coll.hasRoot ? opt.roots : std::vector<int>{0};
    for (gcclDataType_t type : opt.types)
      for (gcclRedOp_t op : ops)
        for (int root : roots)
          runner.series(type, op, root);
    failed = runner.failedTests();
    avgBw = runner.avgBusBw();
  }
  checkOrDie(gcclBarrier(b.comm, nullptr, nullptr), "gcclBarrier", &b);
  if (coll.teardown != nullptr) coll.teardown(b);
  checkOrDie(gcclCommDestroy(b.comm), "gcclCommDestroy", &b);
  gComm = nullptr;

  // nccl-tests' floor on the average bus bandwidth (10% slack), for CI.
  const char* minEnv = getenv("NCCL_TESTS_MIN_BW");
  double minBw = minEnv != nullptr ? atof(minEnv) : -1;
  bool bwFailed = minBw >= 0 && avgBw < 0.9 * minBw;
  if (b.rank == 0) {
    printTestEnd((std::string(coll.name) + "_perf").c_str(), failed, avgBw,
                 minBw < 0 ? "" : (bwFailed ? "FAILED" : "OK"));
    fflush(stdout);
  }
  return failed > 0 || bwFailed ? 1 : 0;
}

}  // namespace gperf

#include "peer_bench.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace peers {

namespace {

// Rank r's input element i for check seed s: (r+1) * a + c with
// a = (i+s) % 7 + 1 and c = (i+s) % 4093. Every value and every partial sum
// over up to 256 ranks is an integer below 2^24, so float32 sums are exact
// whatever the order, and the position term c catches misplaced chunks.
constexpr size_t kPeriodA = 7;
constexpr size_t kPeriodC = 4093;

float inputValue(int rank, size_t i, size_t seed) {
  const size_t j = i + seed;
  return static_cast<float>((rank + 1) * static_cast<int>(j % kPeriodA + 1) +
                            static_cast<int>(j % kPeriodC));
}

float expectedValue(int nranks, size_t i, size_t seed) {
  const size_t j = i + seed;
  const int a = static_cast<int>(j % kPeriodA + 1);
  const int c = static_cast<int>(j % kPeriodC);
  return static_cast<float>(a * nranks * (nranks + 1) / 2 + nranks * c);
}

void fillInput(float* buf, size_t count, int rank, size_t seed) {
  for (size_t i = 0; i < count; ++i)
    buf[i] = inputValue(rank, i, seed);
}

void usage(const char* prog, FILE* f) {
  fprintf(
      f,
      "USAGE: %s  (float32 sum AllReduce, out of place)\n"
      "\t[-b,--minbytes <min size in bytes>]      default 32M; K, M, G suffixes (x1024)\n"
      "\t[-e,--maxbytes <max size in bytes>]      default 32M\n"
      "\t[-i,--stepbytes <increment size>]        default 1M\n"
      "\t[-f,--stepfactor <increment factor>]     default 1 (off: sizes step by -i)\n"
      "\t[-n,--iters <iteration count>]           default 20\n"
      "\t[-w,--warmup_iters <warmup count>]       default 5\n"
      "\t[-c,--check <checked iterations>]        default 1; 0 skips the check\n"
      "\t[--sizes <size,size,...>]                these sizes instead of -b -e -i -f\n"
      "\t[-a,--average <0/1/2/3>]                 time over ranks: 0 rank 0, 1 mean (default),\n"
      "\t                                         2 min, 3 max\n"
      "\t[-z,--blocking <0/1/2>]                  default 2: every call blocks, the next\n"
      "\t                                         follows at once; 1: every call blocks, then\n"
      "\t                                         a barrier; 0: calls are started, waited for\n"
      "\t                                         after the timed loop (not every library)\n"
      "\t[-h,--help]\n",
      prog);
}

class Runner {
 public:
  Runner(const Options& opt, Backend& b) : opt_(opt), b_(b) {
    const size_t bytes = opt.maxBytes + 64;
    send_ = static_cast<float*>(gperf::allocTouched(bytes));
    recv_ = static_cast<float*>(gperf::allocTouched(bytes));
    if (opt.check > 0) sendCopy_ = static_cast<float*>(gperf::allocTouched(bytes));
  }
  ~Runner() {
    free(send_);
    free(recv_);
    free(sendCopy_);
  }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  void sweep();
  int failedRanks() const { return failed_; }
  double avgBusBw() const { return rows_ > 0 ? busBwSum_ / rows_ : 0; }

 private:
  // As all_reduce_perf's loop: -z 0 starts every call and waits for them
  // all at the end, inside the span; -z 1 adds a barrier after each call.
  double timed(size_t count, int iters) {
    const double t0 = gperf::now();
    for (int it = 0; it < iters; ++it) {
      if (opt_.blocking == gperf::Blocking::kNo) {
        b_.start(send_, recv_, count);
      } else {
        b_.allreduce(send_, recv_, count);
        if (opt_.blocking == gperf::Blocking::kWithBarrier) b_.barrier();
      }
    }
    if (opt_.blocking == gperf::Blocking::kNo) b_.waitAll();
    return (gperf::now() - t0) / std::max(1, iters);
  }
  size_t checkOnce(size_t count, size_t seed);
  void row(size_t bytes);

  const Options& opt_;
  Backend& b_;
  float* send_ = nullptr;
  float* recv_ = nullptr;
  float* sendCopy_ = nullptr;
  int rep_ = 0;
  int failed_ = 0;
  double busBwSum_ = 0;
  int rows_ = 0;
};

// One call with fresh inputs into a NaN-filled output; returns this rank's
// wrong elements (results off the exact sum, and send elements changed).
size_t Runner::checkOnce(size_t count, size_t seed) {
  fillInput(send_, count, b_.rank(), seed);
  std::fill(recv_, recv_ + count, std::numeric_limits<float>::quiet_NaN());
  memcpy(sendCopy_, send_, count * sizeof(float));
  b_.allreduce(send_, recv_, count);
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i)
    if (!(recv_[i] == expectedValue(b_.nranks(), i, seed))) ++wrong;
  if (memcmp(sendCopy_, send_, count * sizeof(float)) != 0)
    for (size_t i = 0; i < count; ++i)
      if (memcmp(&sendCopy_[i], &send_[i], sizeof(float)) != 0) ++wrong;
  return wrong;
}

void Runner::row(size_t bytes) {
  const size_t count = bytes / sizeof(float);
  if (opt_.check > 0) fillInput(send_, count, b_.rank(), bytes % kPeriodC);
  // One untimed call, so that the timed loop starts with every rank ready.
  timed(count, 1);
  b_.barrier();
  double sec = timed(count, opt_.iters);
  if (opt_.average != 0) {
    static const Combine kCombine[] = {Combine::kSum, Combine::kSum, Combine::kMin, Combine::kMax};
    b_.combine(&sec, 1, kCombine[opt_.average]);
    if (opt_.average == 1) sec /= b_.nranks();
  }
  const double algBw = static_cast<double>(count * sizeof(float)) / 1e9 / sec;
  const double busBw = algBw * 2.0 * (b_.nranks() - 1) / b_.nranks();

  // Summed over ranks: wrong elements, and ranks that saw any.
  double wrong[2] = {0, 0};
  for (int r = 0; r < opt_.check; ++r) {
    const size_t seed = (bytes + static_cast<size_t>(rep_++) * 977) % (kPeriodA * kPeriodC);
    const size_t local = checkOnce(count, seed);
    double counts[2] = {static_cast<double>(local), local > 0 ? 1.0 : 0.0};
    b_.combine(counts, 2, Combine::kSum);
    wrong[0] = counts[0];
    wrong[1] = counts[1];
    if (counts[0] > 0) break;
  }
  failed_ += static_cast<int>(wrong[1]);
  if (b_.rank() == 0) {
    printf(
        "%s%s\n", gperf::rowLabels(count * sizeof(float), count, "float", "sum", -1).c_str(),
        gperf::rowResults(sec, algBw, busBw, opt_.check, static_cast<int64_t>(wrong[0])).c_str());
    fflush(stdout);
  }
  busBwSum_ += busBw;
  ++rows_;
}

void Runner::sweep() {
  b_.barrier();
  for (size_t bytes : {opt_.maxBytes, opt_.minBytes})
    timed(bytes / sizeof(float), opt_.warmupIters);
  gperf::forEachSize(opt_, [&](size_t bytes) { row(bytes); });
}

void printHeader(const char* name, const Options& opt, Backend& b) {
  // Each rank's line, gathered through the sum combine: a rank writes its
  // own slot and leaves the others zero.
  constexpr size_t kLine = 128;
  const size_t n = static_cast<size_t>(b.nranks());
  std::vector<double> pids(n, 0.0);
  pids[static_cast<size_t>(b.rank())] = static_cast<double>(getpid());
  b.combine(pids.data(), n, Combine::kSum);
  if (b.rank() != 0) return;
  char host[kLine] = {0};
  gethostname(host, sizeof(host) - 1);
  gperf::printTestStart(name, opt, 1);
  printf("#\n# Using devices\n");
  for (size_t r = 0; r < n; ++r)
    printf("#  Rank %2zu Group  0 Pid %6.0f on %10s device cpu [host memory]\n", r, pids[r], host);
  printf("#\n");
  for (const std::string& s : b.describe(opt))
    printf("# %s\n", s.c_str());
  printf("#\n");
  gperf::printColumnHeader(false, "time");
  fflush(stdout);
}

}  // namespace

int parseOptions(int argc, char** argv, bool report, Options* o) {
  gperf::FlagParser flags(argc, argv, report);
  o->blocking = gperf::Blocking::kBackToBack;
  const int status = flags.parse(o, usage);
  if (status >= 0) return status;
  if (o->minBytes < sizeof(float) || o->maxBytes < o->minBytes)
    return flags.bad("sizes must satisfy 4 <= -b <= -e");
  bool whole = o->minBytes % sizeof(float) == 0 && o->maxBytes % sizeof(float) == 0 &&
               (o->stepFactor > 1 || !o->sizes.empty() || o->stepBytes % sizeof(float) == 0);
  for (size_t bytes : o->sizes)
    whole = whole && bytes % sizeof(float) == 0;
  if (!whole) return flags.bad("sizes must be multiples of 4 bytes (float32)");
  if (o->stepFactor <= 1 && o->stepBytes == 0 && o->maxBytes != o->minBytes)
    return flags.bad("-i must be positive when -f is 1 and -b differs from -e");
  return -1;
}

int run(const char* name, const Options& opt, Backend& b) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (opt.blocking == gperf::Blocking::kNo && !b.noNonBlocking().empty()) {
    // Every rank has the same flags, so every rank stops here.
    if (b.rank() == 0)
      fprintf(stderr, "%s: -z 0 is not offered: %s (-z 1 or 2 time blocking calls)\n", name,
              b.noNonBlocking().c_str());
    return 2;
  }
  printHeader(name, opt, b);
  int failed = 0;
  double avgBw = 0;
  {
    Runner runner(opt, b);
    runner.sweep();
    failed = runner.failedRanks();
    avgBw = runner.avgBusBw();
  }
  b.barrier();
  if (b.rank() == 0) {
    gperf::printTestEnd(name, failed, avgBw, "");
    fflush(stdout);
  }
  return failed > 0 ? 1 : 0;
}

}  // namespace peers

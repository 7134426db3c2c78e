#include "peer_bench.h"

#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace peers {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Page-aligned and touched, so that first-touch page faults stay out of the
// timed loop (as in the gccl harness).
float* allocTouched(size_t bytes) {
  void* p = nullptr;
  bytes = std::max<size_t>(bytes, 4096);
  if (posix_memalign(&p, 4096, bytes) != 0) {
    fprintf(stderr, "peer bench: cannot allocate %zu bytes\n", bytes);
    exit(1);
  }
  memset(p, 0, bytes);
  return static_cast<float*>(p);
}

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

// nccl-tests' time column: fixed width, fewer decimals as it grows.
void formatTime(double us, char* s, size_t len) {
  if (us >= 10000.0)
    snprintf(s, len, "%7.0f", us);
  else if (us >= 100.0)
    snprintf(s, len, "%7.1f", us);
  else
    snprintf(s, len, "%7.2f", us);
}

bool parseSize(const char* s, size_t* out) {
  errno = 0;
  char* end = nullptr;
  double v = strtod(s, &end);
  if (end == s || errno != 0 || !std::isfinite(v) || v < 0) return false;
  double unit = 1;
  if (*end == 'K' || *end == 'k') {
    unit = 1024.0;
    ++end;
  } else if (*end == 'M' || *end == 'm') {
    unit = 1024.0 * 1024;
    ++end;
  } else if (*end == 'G' || *end == 'g') {
    unit = 1024.0 * 1024 * 1024;
    ++end;
  }
  if (*end == 'B' || *end == 'b') ++end;
  if (*end != '\0') return false;
  double bytes = v * unit;
  if (bytes > 1e18 || bytes != std::floor(bytes)) return false;
  *out = static_cast<size_t>(bytes);
  return true;
}

bool parseInt(const char* s, long lo, long hi, long* out) {
  errno = 0;
  char* end = nullptr;
  long v = strtol(s, &end, 0);
  if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  *out = v;
  return true;
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
      "\t[-a,--average <0/1/2/3>]                 time over ranks: 0 rank 0, 1 mean (default),\n"
      "\t                                         2 min, 3 max\n"
      "\t[-h,--help]\n",
      prog);
}

class Runner {
 public:
  Runner(const Options& opt, Backend& b) : opt_(opt), b_(b) {
    const size_t bytes = opt.maxBytes + 64;
    send_ = allocTouched(bytes);
    recv_ = allocTouched(bytes);
    if (opt.check > 0) sendCopy_ = allocTouched(bytes);
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
  double timed(size_t count, int iters) {
    const double t0 = now();
    for (int it = 0; it < iters; ++it)
      b_.allreduce(send_, recv_, count);
    return (now() - t0) / std::max(1, iters);
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
    char t[32];
    formatTime(sec * 1e6, t, sizeof(t));
    char w[32];
    if (opt_.check > 0)
      snprintf(w, sizeof(w), "%.0f", wrong[0]);
    else
      snprintf(w, sizeof(w), "N/A");
    printf("%12zu  %12zu  %8s  %6s  %6d  %7s  %6.2f  %6.2f  %5s\n", count * sizeof(float), count,
           "float", "sum", -1, t, algBw, busBw, w);
    fflush(stdout);
  }
  busBwSum_ += busBw;
  ++rows_;
}

void Runner::sweep() {
  b_.barrier();
  for (size_t bytes : {opt_.maxBytes, opt_.minBytes})
    timed(bytes / sizeof(float), opt_.warmupIters);
  for (size_t bytes = opt_.minBytes; bytes <= opt_.maxBytes;) {
    row(bytes);
    size_t next = opt_.stepFactor > 1 ? bytes * opt_.stepFactor : bytes + opt_.stepBytes;
    if (next <= bytes) break;  // overflow, or a zero step at maxbytes
    bytes = next;
  }
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
  printf("# Collective test starting: %s\n", name);
  printf(
      "# nThread 1 nGpus 1 minBytes %zu maxBytes %zu step: %zu(%s) warmup iters: %d iters: %d "
      "agg iters: 1 validation: %d graph: 0\n",
      opt.minBytes, opt.maxBytes, opt.stepFactor > 1 ? opt.stepFactor : opt.stepBytes,
      opt.stepFactor > 1 ? "factor" : "bytes", opt.warmupIters, opt.iters, opt.check);
  printf("#\n# Using devices\n");
  for (size_t r = 0; r < n; ++r)
    printf("#  Rank %2zu Group  0 Pid %6.0f on %10s device cpu [host memory]\n", r, pids[r], host);
  printf("#\n");
  for (const std::string& s : b.describe())
    printf("# %s\n", s.c_str());
  printf("#\n");
  printf("# %10s  %12s  %8s  %6s  %6s           out-of-place          \n", "", "", "", "", "");
  printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s\n", "size", "count", "type", "redop",
         "root", "time", "algbw", "busbw", "#wrong");
  printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s\n", "(B)", "(elements)", "", "", "",
         "(us)", "(GB/s)", "(GB/s)", "");
  fflush(stdout);
}

}  // namespace

int parseOptions(int argc, char** argv, bool report, Options* o) {
  const char* prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  auto bad = [&](const std::string& why) {
    if (report) fprintf(stderr, "%s: %s\n(%s -h lists the flags)\n", prog, why.c_str(), prog);
    return 2;
  };
  static const option kLong[] = {
      {"minbytes", required_argument, nullptr, 'b'},
      {"maxbytes", required_argument, nullptr, 'e'},
      {"stepbytes", required_argument, nullptr, 'i'},
      {"stepfactor", required_argument, nullptr, 'f'},
      {"iters", required_argument, nullptr, 'n'},
      {"warmup_iters", required_argument, nullptr, 'w'},
      {"check", required_argument, nullptr, 'c'},
      {"average", required_argument, nullptr, 'a'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  const long kIntMax = std::numeric_limits<int>::max();
  opterr = 0;
  optind = 1;
  for (;;) {
    int longIndex = -1;
    int c = getopt_long(argc, argv, ":b:e:i:f:n:w:c:a:h", kLong, &longIndex);
    if (c == -1) break;
    long v = 0;
    const std::string a = optarg != nullptr ? optarg : "";
    const std::string flag = longIndex >= 0 ? std::string("--") + kLong[longIndex].name
                                            : std::string("-") + static_cast<char>(c);
    auto badValue = [&](const char* expected) {
      return bad("invalid value '" + a + "' for " + flag + ": expected " + expected);
    };
    switch (c) {
      case 'b':
        if (!parseSize(optarg, &o->minBytes)) return badValue("a size such as 8, 64K or 1M");
        break;
      case 'e':
        if (!parseSize(optarg, &o->maxBytes)) return badValue("a size such as 8, 64K or 1M");
        break;
      case 'i':
        if (!parseSize(optarg, &o->stepBytes)) return badValue("a size such as 8, 64K or 1M");
        break;
      case 'f':
        if (!parseInt(optarg, 1, 1L << 30, &v)) return badValue("an integer factor >= 1");
        o->stepFactor = static_cast<size_t>(v);
        break;
      case 'n':
        if (!parseInt(optarg, 1, kIntMax, &v)) return badValue("an iteration count >= 1");
        o->iters = static_cast<int>(v);
        break;
      case 'w':
        if (!parseInt(optarg, 0, kIntMax, &v)) return badValue("a warm-up count >= 0");
        o->warmupIters = static_cast<int>(v);
        break;
      case 'c':
        if (!parseInt(optarg, 0, kIntMax, &v)) return badValue("0 (no check) or a count");
        o->check = static_cast<int>(v);
        break;
      case 'a':
        if (!parseInt(optarg, 0, 3, &v)) return badValue("0, 1, 2 or 3");
        o->average = static_cast<int>(v);
        break;
      case 'h':
        if (report) usage(prog, stdout);
        return 0;
      case ':':
        return bad(std::string("flag -") + static_cast<char>(optopt) + " needs a value");
      default:
        if (optopt != 0) return bad(std::string("unknown flag -") + static_cast<char>(optopt));
        return bad(std::string("unknown flag ") + argv[optind - 1]);
    }
  }
  if (optind < argc) return bad(std::string("unexpected argument '") + argv[optind] + "'");
  if (o->minBytes < sizeof(float) || o->maxBytes < o->minBytes)
    return bad("sizes must satisfy 4 <= -b <= -e");
  if (o->minBytes % sizeof(float) != 0 || o->maxBytes % sizeof(float) != 0 ||
      (o->stepFactor <= 1 && o->stepBytes % sizeof(float) != 0))
    return bad("sizes must be multiples of 4 bytes (float32)");
  if (o->stepFactor <= 1 && o->stepBytes == 0 && o->maxBytes != o->minBytes)
    return bad("-i must be positive when -f is 1 and -b differs from -e");
  return -1;
}

int run(const char* name, const Options& opt, Backend& b) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
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
    printf("# Out of bounds values : %d %s\n", failed, failed ? "FAILED" : "OK");
    printf("# Avg bus bandwidth    : %g \n", avgBw);
    printf("#\n# Collective test concluded: %s\n", name);
    fflush(stdout);
  }
  return failed > 0 ? 1 : 0;
}

}  // namespace peers

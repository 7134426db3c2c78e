#include "common/sweep.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace gperf {

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

FlagParser::FlagParser(int argc, char** argv, bool report)
    : argc_(argc),
      argv_(argv),
      report_(report),
      prog_(strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]) {}

int FlagParser::bad(const std::string& why) const {
  if (report_) fprintf(stderr, "%s: %s\n(%s -h lists the flags)\n", prog_, why.c_str(), prog_);
  return 2;
}

int FlagParser::badValue(const std::string& expected) const {
  return bad("invalid value '" + value_ + "' for " + flag_ + ": expected " + expected);
}

namespace {

// getopt_long's value for --sizes: above every letter, so it has no short form.
constexpr int kFlagSizes = 0x100;

// A comma-separated list of sizes, each as parseSize() reads it; ascending,
// each once.
bool parseSizeList(const std::string& s, std::vector<size_t>* out) {
  std::vector<size_t> sizes;
  size_t begin = 0;
  for (;;) {
    const size_t end = s.find(',', begin);
    const std::string item = s.substr(begin, end == std::string::npos ? end : end - begin);
    size_t bytes = 0;
    if (!parseSize(item.c_str(), &bytes)) return false;
    sizes.push_back(bytes);
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  *out = sizes;
  return true;
}

}  // namespace

int FlagParser::parse(SweepOptions* o, void (*usage)(const char* prog, FILE* f),
                      const std::vector<option>& more, const Handler& other) {
  std::vector<option> longs = {
      {"minbytes", required_argument, nullptr, 'b'},
      {"maxbytes", required_argument, nullptr, 'e'},
      {"stepbytes", required_argument, nullptr, 'i'},
      {"stepfactor", required_argument, nullptr, 'f'},
      {"iters", required_argument, nullptr, 'n'},
      {"warmup_iters", required_argument, nullptr, 'w'},
      {"check", required_argument, nullptr, 'c'},
      {"average", required_argument, nullptr, 'a'},
      {"blocking", required_argument, nullptr, 'z'},
      {"sizes", required_argument, nullptr, kFlagSizes},
  };
  longs.insert(longs.end(), more.begin(), more.end());
  longs.push_back({"help", no_argument, nullptr, 'h'});
  // Leading ':': a missing value comes back as ':', told apart from an
  // unknown flag.
  std::string shorts = ":";
  for (const option& l : longs) {
    if (l.val >= kFlagSizes) continue;
    shorts += static_cast<char>(l.val);
    if (l.has_arg != no_argument) shorts += ':';
  }
  longs.push_back({nullptr, 0, nullptr, 0});

  const long kIntMax = std::numeric_limits<int>::max();
  // The flag that last set the sizes: --sizes and -b/-e/-i/-f exclude each other.
  std::string seriesFlag;
  bool listGiven = false;
  opterr = 0;  // our own messages name the flag and what it takes
  optind = 1;
  for (;;) {
    int longIndex = -1;
    int c = getopt_long(argc_, argv_, shorts.c_str(), longs.data(), &longIndex);
    if (c == -1) break;
    long v = 0;
    value_ = optarg != nullptr ? optarg : "";
    flag_ = longIndex >= 0 ? std::string("--") + longs[static_cast<size_t>(longIndex)].name
                           : std::string("-") + static_cast<char>(c);
    if (c == 'b' || c == 'e' || c == 'i' || c == 'f') seriesFlag = flag_;
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
        if (!parseInt(optarg, 0, 3, &v))
          return badValue("0 (rank 0), 1 (mean), 2 (min) or 3 (max)");
        o->average = static_cast<int>(v);
        break;
      case 'z':
        if (!parseInt(optarg, 0, 2, &v))
          return badValue(
              "0 (requests, waited for after the loop), 1 (each call blocks, then a barrier) or "
              "2 (each call blocks, the next follows at once)");
        o->blocking = static_cast<Blocking>(v);
        break;
      case kFlagSizes:
        if (!parseSizeList(value_, &o->sizes))
          return badValue("sizes separated by commas, such as 8,32K,2M");
        listGiven = true;
        break;
      case 'h':
        if (report_) usage(prog_, stdout);
        return 0;
      case ':':
        return bad(std::string(argv_[optind - 1]) + " needs a value");
      case '?':
        if (optopt != 0) return bad(std::string("unknown flag -") + static_cast<char>(optopt));
        return bad(std::string("unknown flag ") + argv_[optind - 1]);
      default: {
        const int status = other ? other(c, value_) : bad("unknown flag " + flag_);
        if (status >= 0) return status;
      }
    }
  }
  if (optind < argc_) return bad(std::string("unexpected argument '") + argv_[optind] + "'");
  if (listGiven) {
    if (!seriesFlag.empty()) return bad("--sizes and " + seriesFlag + " both give the sizes");
    o->minBytes = o->sizes.front();
    o->maxBytes = o->sizes.back();
  }
  return -1;
}

void forEachSize(const SweepOptions& o, const std::function<void(size_t bytes)>& body) {
  if (!o.sizes.empty()) {
    for (size_t bytes : o.sizes)
      body(bytes);
    return;
  }
  for (size_t bytes = o.minBytes; bytes <= o.maxBytes;) {
    body(bytes);
    const size_t next = o.stepFactor > 1 ? bytes * o.stepFactor : bytes + o.stepBytes;
    if (next <= bytes) break;  // overflow, or a zero step at maxbytes
    bytes = next;
  }
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void* allocTouched(size_t bytes) {
  void* p = nullptr;
  bytes = std::max<size_t>(bytes, 4096);
  if (posix_memalign(&p, 4096, bytes) != 0) {
    fprintf(stderr, "perf: cannot allocate %zu bytes\n", bytes);
    exit(1);
  }
  memset(p, 0, bytes);
  return p;
}

void printTestStart(const char* name, const SweepOptions& o, int aggIters) {
  printf("# Collective test starting: %s\n", name);
  printf(
      "# nThread 1 nGpus 1 minBytes %zu maxBytes %zu step: %zu(%s) warmup iters: %d iters: %d "
      "agg iters: %d validation: %d graph: 0\n",
      o.minBytes, o.maxBytes, o.stepFactor > 1 ? o.stepFactor : o.stepBytes,
      o.stepFactor > 1 ? "factor" : "bytes", o.warmupIters, o.iters, aggIters, o.check);
  if (!o.sizes.empty()) {
    printf("# Sizes (--sizes):");
    for (size_t bytes : o.sizes)
      printf(" %zu", bytes);
    printf("\n");
  }
  if (o.blocking == Blocking::kWithBarrier)
    printf("# Blocking Enabled: wait for completion and barrier after each collective \n");
  if (o.blocking == Blocking::kBackToBack)
    printf("# Blocking Enabled: wait for completion of each collective, no barrier (-z 2)\n");
}

void printColumnHeader(bool inPlace, const char* timeName, bool wire) {
  const int groups = inPlace ? 2 : 1;
  printf("# %10s  %12s  %8s  %6s  %6s           out-of-place          ", "", "", "", "", "");
  printf("%s\n", inPlace ? "             in-place          " : "");
  printf("# %10s  %12s  %8s  %6s  %6s", "size", "count", "type", "redop", "root");
  for (int g = 0; g < groups; ++g)
    printf("  %7s  %6s  %6s %6s", timeName, "algbw", "busbw", "#wrong");
  if (wire) printf("  %10s", "wire");
  printf("\n# %10s  %12s  %8s  %6s  %6s", "(B)", "(elements)", "", "", "");
  for (int g = 0; g < groups; ++g)
    printf("  %7s  %6s  %6s  %5s", "(us)", "(GB/s)", "(GB/s)", "");
  if (wire) printf("  %10s", "(B/call)");
  printf("\n");
}

std::string rowLabels(size_t bytes, size_t count, const char* type, const char* redop, int root) {
  char s[128];
  snprintf(s, sizeof(s), "%12zu  %12zu  %8s  %6s  %6d", bytes, count, type, redop, root);
  return s;
}

std::string rowResults(double seconds, double algBw, double busBw, int check, int64_t wrong) {
  // nccl-tests' time column: fixed width, fewer decimals as it grows.
  const double us = seconds * 1e6;
  char t[32];
  if (us >= 10000.0)
    snprintf(t, sizeof(t), "%7.0f", us);
  else if (us >= 100.0)
    snprintf(t, sizeof(t), "%7.1f", us);
  else
    snprintf(t, sizeof(t), "%7.2f", us);
  const std::string w = check > 0 ? std::to_string(wrong) : "N/A";
  char s[128];
  snprintf(s, sizeof(s), "  %7s  %6.2f  %6.2f  %5s", t, algBw, busBw, w.c_str());
  return s;
}

void printTestEnd(const char* name, int failed, double avgBusBw, const char* bwVerdict) {
  printf("# Out of bounds values : %d %s\n", failed, failed ? "FAILED" : "OK");
  printf("# Avg bus bandwidth    : %g %s\n", avgBusBw, bwVerdict);
  printf("#\n# Collective test concluded: %s\n", name);
}

}  // namespace gperf

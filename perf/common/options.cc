#include "common/options.h"

#include <getopt.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>

namespace gperf {

namespace {

struct TypeEntry {
  const char* name;
  gcclDataType_t type;
};
// nccl-tests' order and names first; the rest are accepted spellings.
const TypeEntry kTypes[] = {
    {"int8", gcclInt8},         {"uint8", gcclUint8},     {"int32", gcclInt32},
    {"uint32", gcclUint32},     {"int64", gcclInt64},     {"uint64", gcclUint64},
    {"half", gcclFloat16},      {"float", gcclFloat32},   {"double", gcclFloat64},
    {"bfloat16", gcclBfloat16}, {"char", gcclInt8},       {"int", gcclInt32},
    {"float16", gcclFloat16},   {"fp16", gcclFloat16},    {"float32", gcclFloat32},
    {"fp32", gcclFloat32},      {"float64", gcclFloat64}, {"fp64", gcclFloat64},
    {"bf16", gcclBfloat16},
};
const int kNumCanonicalTypes = 10;

struct OpEntry {
  const char* name;
  gcclRedOp_t op;
};
const OpEntry kOps[] = {
    {"sum", gcclSum}, {"prod", gcclProd}, {"max", gcclMax}, {"min", gcclMin}, {"avg", gcclAvg},
};

bool isFloating(gcclDataType_t t) {
  return t == gcclFloat16 || t == gcclFloat32 || t == gcclFloat64 || t == gcclBfloat16;
}

void usage(const char* prog, FILE* f) {
  fprintf(
      f,
      "USAGE: %s\n"
      "\t[-b,--minbytes <min size in bytes>]      default 32M; K, M, G suffixes (x1024)\n"
      "\t[-e,--maxbytes <max size in bytes>]      default 32M\n"
      "\t[-i,--stepbytes <increment size>]        default 1M\n"
      "\t[-f,--stepfactor <increment factor>]     default 1 (off: sizes step by -i)\n"
      "\t[-n,--iters <iteration count>]           default 20\n"
      "\t[-m,--agg_iters <calls per iteration>]   default 1 (grouped)\n"
      "\t[-w,--warmup_iters <warmup count>]       default 5\n"
      "\t[-c,--check <checked iterations>]        default 1; 0 skips the check\n"
      "\t[-o,--op <sum/prod/min/max/avg/all>]     default sum\n"
      "\t[-d,--datatype <type/all>]               default float; int8 uint8 int32 uint32\n"
      "\t                                         int64 uint64 half float double bfloat16\n"
      "\t[-r,--root <root/all>]                   default 0\n"
      "\t[-z,--blocking <0/1>]                    default 0; 1: every call blocks, then a\n"
      "\t                                         barrier; 0: calls take requests, waited\n"
      "\t                                         for after the timed loop\n"
      "\t[-a,--average <0/1/2/3>]                 time over ranks: 0 rank 0, 1 mean (default),\n"
      "\t                                         2 min, 3 max\n"
      "\t[-C,--report_cputime <0/1>]              default 0\n"
      "\t[-t,--nthreads 1] [-g,--ngpus 1]         accepted for compatibility; one rank per\n"
      "\t                                         process (start ranks with mpirun or gcclrun)\n"
      "\t[-h,--help]\n",
      prog);
}

// A byte size like nccl-tests': a number with an optional K, M or G (x1024).
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

}  // namespace

const char* typeName(gcclDataType_t t) {
  for (int i = 0; i < kNumCanonicalTypes; ++i)
    if (kTypes[i].type == t) return kTypes[i].name;
  return "?";
}

const char* opName(gcclRedOp_t op) {
  for (const OpEntry& e : kOps)
    if (e.op == op) return e.name;
  return "?";
}

size_t typeSize(gcclDataType_t t) {
  switch (t) {
    case gcclInt8:
    case gcclUint8:
      return 1;
    case gcclFloat16:
    case gcclBfloat16:
      return 2;
    case gcclInt32:
    case gcclUint32:
    case gcclFloat32:
      return 4;
    default:
      return 8;
  }
}

namespace {
const char* launcherRank() {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID", "RANK"}) {
    const char* s = getenv(v);
    if (s != nullptr && *s != '\0') return s;
  }
  return nullptr;
}
}  // namespace

bool launcherRankIsZero() {
  const char* r = launcherRank();
  return r == nullptr || strcmp(r, "0") == 0;
}

bool underLauncher() {
  return launcherRank() != nullptr;
}

int parseOptions(int argc, char** argv, const Collective& coll, Options* o) {
  const char* prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  // Every rank parses the same flags: one report is enough.
  const bool report = launcherRankIsZero();
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
      {"agg_iters", required_argument, nullptr, 'm'},
      {"warmup_iters", required_argument, nullptr, 'w'},
      {"check", required_argument, nullptr, 'c'},
      {"op", required_argument, nullptr, 'o'},
      {"datatype", required_argument, nullptr, 'd'},
      {"root", required_argument, nullptr, 'r'},
      {"blocking", required_argument, nullptr, 'z'},
      {"average", required_argument, nullptr, 'a'},
      {"report_cputime", required_argument, nullptr, 'C'},
      {"nthreads", required_argument, nullptr, 't'},
      {"ngpus", required_argument, nullptr, 'g'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  const long kIntMax = std::numeric_limits<int>::max();
  opterr = 0;  // our own messages name the flag and what it takes
  optind = 1;
  for (;;) {
    int longIndex = -1;
    int c = getopt_long(argc, argv, ":b:e:i:f:n:m:w:c:o:d:r:z:a:C:t:g:h", kLong, &longIndex);
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
      case 'm':
        if (!parseInt(optarg, 1, 1024, &v)) return badValue("1 to 1024 calls per iteration");
        o->aggIters = static_cast<int>(v);
        break;
      case 'w':
        if (!parseInt(optarg, 0, kIntMax, &v)) return badValue("a warm-up count >= 0");
        o->warmupIters = static_cast<int>(v);
        break;
      case 'c':
        if (!parseInt(optarg, 0, kIntMax, &v)) return badValue("0 (no check) or a count");
        o->check = static_cast<int>(v);
        break;
      case 'o':
        o->ops.clear();
        for (const OpEntry& e : kOps)
          if (a == "all" || a == e.name) o->ops.push_back(e.op);
        if (o->ops.empty()) return badValue("sum, prod, min, max, avg or all");
        break;
      case 'd':
        o->types.clear();
        for (size_t i = 0; i < std::size(kTypes); ++i) {
          bool canonical = i < static_cast<size_t>(kNumCanonicalTypes);
          if ((a == "all" && canonical) || a == kTypes[i].name) {
            if (a == "all" && coll.floatOnly && !isFloating(kTypes[i].type)) continue;
            if (coll.floatOnly && !isFloating(kTypes[i].type))
              return bad("datatype '" + a + "' is not supported: " + coll.name +
                         " averages floating types only (half, float, double, bfloat16)");
            o->types.push_back(kTypes[i].type);
          }
        }
        if (o->types.empty())
          return badValue(
              "int8, uint8, int32, uint32, int64, uint64, half, float, double, "
              "bfloat16 or all");
        break;
      case 'r':
        if (a == "all") {
          o->roots.clear();
        } else if (parseInt(optarg, 0, kIntMax, &v)) {
          o->roots.assign(1, static_cast<int>(v));
        } else {
          return badValue("a rank number or all");
        }
        break;
      case 'z':
        if (!parseInt(optarg, 0, 1, &v)) return badValue("0 or 1");
        o->blocking = v != 0;
        break;
      case 'a':
        if (!parseInt(optarg, 0, 3, &v))
          return badValue("0 (rank 0), 1 (mean), 2 (min) or 3 (max)");
        o->average = static_cast<int>(v);
        break;
      case 'C':
        if (!parseInt(optarg, 0, 1, &v)) return badValue("0 or 1");
        o->reportCpuTime = v != 0;
        break;
      case 't':
      case 'g':
        if (!parseInt(optarg, 1, 1, &v))
          return badValue(
              "1: gccl runs one rank per process, one thread each; start more ranks with "
              "mpirun -np N or gcclrun -n N");
        break;
      case 'h':
        if (report) usage(prog, stdout);
        return 0;
      case ':':
        return bad(std::string(argv[optind - 1]) + " needs a value");
      default:
        if (optopt != 0) return bad(std::string("unknown flag -") + static_cast<char>(optopt));
        return bad(std::string("unknown flag ") + argv[optind - 1]);
    }
  }
  if (optind < argc) return bad(std::string("unexpected argument '") + argv[optind] + "'");
  if (o->minBytes > o->maxBytes)
    return bad("minbytes (-b " + std::to_string(o->minBytes) + ") is larger than maxbytes (-e " +
               std::to_string(o->maxBytes) + ")");
  if (o->stepFactor <= 1 && o->stepBytes == 0 && o->minBytes < o->maxBytes)
    return bad("-i 0 never reaches maxbytes: give a step size, or a factor with -f");
  if (o->stepFactor > 1 && o->minBytes == 0 && o->maxBytes > 0)
    return bad("-b 0 never grows by a factor (-f): start at 1 byte or more");
  return -1;
}

}  // namespace gperf

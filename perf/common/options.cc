#include "common/options.h"

#include <getopt.h>

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
      "\t[-z,--blocking <0/1/2>]                  default 0; 1: every call blocks, then a\n"
      "\t                                         barrier; 2: every call blocks, the next\n"
      "\t                                         follows at once (no barrier); 0: calls\n"
      "\t                                         take requests, waited for after the\n"
      "\t                                         timed loop\n"
      "\t[--sizes <size,size,...>]                these sizes instead of -b -e -i -f\n"
      "\t[-a,--average <0/1/2/3>]                 time over ranks: 0 rank 0, 1 mean (default),\n"
      "\t                                         2 min, 3 max\n"
      "\t[-C,--report_cputime <0/1>]              default 0\n"
      "\t[-Z,--codec <codec>]                    none (default), f16, bf16, q8, q4, q2 (q8s...:\n"
      "\t                                         stochastic rounding), lattice8:STEP, "
      "topk:FRACTION;\n"
      "\t                                         the gossip tools take the casts, quantization "
      "and\n"
      "\t                                         the lattice, all_reduce_perf top-k\n"
      "\t[-t,--nthreads 1] [-g,--ngpus 1]         accepted for compatibility; one rank per\n"
      "\t                                         process (start ranks with mpirun or gcclrun)\n"
      "\t[-h,--help]\n",
      prog);
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

bool parseCodec(const std::string& spec, gcclCodecConfig_t* out, std::string* why) {
  gcclCodecConfig_t c = GCCL_CODEC_CONFIG_INITIALIZER;
  c.seed = 1;
  std::string name = spec, arg;
  size_t colon = spec.find(':');
  if (colon != std::string::npos) {
    name = spec.substr(0, colon);
    arg = spec.substr(colon + 1);
  }
  auto number = [&](double lo, double hi, double* v) {
    char* end = nullptr;
    *v = strtod(arg.c_str(), &end);
    return !arg.empty() && end != nullptr && *end == '\0' && *v > lo && *v <= hi;
  };
  double v = 0;
  if (name == "none" && arg.empty()) {
  } else if (name == "f16" && arg.empty()) {
    c.codec = gcclCodecFloat16;
  } else if (name == "bf16" && arg.empty()) {
    c.codec = gcclCodecBfloat16;
  } else if ((name == "q8" || name == "q4" || name == "q2" || name == "q8s" || name == "q4s" ||
              name == "q2s") &&
             arg.empty()) {
    c.codec = gcclCodecQuantize;
    c.bits = name[1] - '0';
    c.rounding = name.size() == 3 ? gcclRoundStochastic : gcclRoundNearest;
  } else if (name == "lattice8" || name == "lattice4" || name == "lattice2") {
    if (!number(0, 1e300, &v)) {
      *why = "lattice" + name.substr(7) + ":STEP with a step > 0";
      return false;
    }
    c.codec = gcclCodecLattice;
    c.bits = name[7] - '0';
    c.latticeStep = v;
  } else if (name == "topk") {
    if (!number(0, 1, &v)) {
      *why = "topk:FRACTION with a fraction in (0, 1]";
      return false;
    }
    c.codec = gcclCodecTopK;
    c.topkFraction = v;
  } else {
    *why =
        "none, f16, bf16, q8, q4, q2, q8s, q4s, q2s, lattice8:STEP, lattice4:STEP, "
        "lattice2:STEP or topk:FRACTION (exact selection)";
    return false;
  }
  *out = c;
  return true;
}

double codecError(const gcclCodecConfig_t& c, double range) {
  switch (c.codec) {
    case gcclCodecQuantize: {
      double scale = 2 * range / ((1 << c.bits) - 1);
      return c.rounding == gcclRoundNearest ? scale / 2 : scale;
    }
    case gcclCodecLattice:
      return c.latticeStep;
    default:
      return 0;
  }
}

int parseOptions(int argc, char** argv, const Collective& coll, Options* o) {
  // Every rank parses the same flags: one report is enough.
  FlagParser flags(argc, argv, launcherRankIsZero());
  static const std::vector<option> kMore = {
      {"agg_iters", required_argument, nullptr, 'm'},
      {"op", required_argument, nullptr, 'o'},
      {"datatype", required_argument, nullptr, 'd'},
      {"root", required_argument, nullptr, 'r'},
      {"report_cputime", required_argument, nullptr, 'C'},
      {"nthreads", required_argument, nullptr, 't'},
      {"ngpus", required_argument, nullptr, 'g'},
      {"codec", required_argument, nullptr, 'Z'},
  };
  auto other = [&](int c, const std::string& a) -> int {
    long v = 0;
    switch (c) {
      case 'm':
        if (!parseInt(a.c_str(), 1, 1024, &v))
          return flags.badValue("1 to 1024 calls per iteration");
        o->aggIters = static_cast<int>(v);
        break;
      case 'o':
        o->ops.clear();
        for (const OpEntry& e : kOps)
          if (a == "all" || a == e.name) o->ops.push_back(e.op);
        if (o->ops.empty()) return flags.badValue("sum, prod, min, max, avg or all");
        break;
      case 'd':
        o->types.clear();
        for (size_t i = 0; i < std::size(kTypes); ++i) {
          bool canonical = i < static_cast<size_t>(kNumCanonicalTypes);
          if ((a == "all" && canonical) || a == kTypes[i].name) {
            if (a == "all" && coll.floatOnly && !isFloating(kTypes[i].type)) continue;
            if (coll.floatOnly && !isFloating(kTypes[i].type))
              return flags.bad("datatype '" + a + "' is not supported: " + coll.name +
                               " averages floating types only (half, float, double, bfloat16)");
            o->types.push_back(kTypes[i].type);
          }
        }
        if (o->types.empty())
          return flags.badValue(
              "int8, uint8, int32, uint32, int64, uint64, half, float, double, "
              "bfloat16 or all");
        break;
      case 'r':
        if (a == "all") {
          o->roots.clear();
        } else if (parseInt(a.c_str(), 0, std::numeric_limits<int>::max(), &v)) {
          o->roots.assign(1, static_cast<int>(v));
        } else {
          return flags.badValue("a rank number or all");
        }
        break;
      case 'C':
        if (!parseInt(a.c_str(), 0, 1, &v)) return flags.badValue("0 or 1");
        o->reportCpuTime = v != 0;
        break;
      case 'Z': {
        std::string why;
        if (!parseCodec(a, &o->codec, &why)) return flags.badValue(why);
        o->codecName = a;
        if (o->codec.codec != gcclCodecNone && (coll.codecs & codecBit(o->codec.codec)) == 0)
          return flags.bad("--codec " + a + " is not supported by " + coll.name + "_perf");
        break;
      }
      case 't':
      case 'g':
        if (!parseInt(a.c_str(), 1, 1, &v))
          return flags.badValue(
              "1: gccl runs one rank per process, one thread each; start more ranks with "
              "mpirun -np N or gcclrun -n N");
        break;
    }
    return -1;
  };
  const int status = flags.parse(o, usage, kMore, other);
  if (status >= 0) return status;
  if (o->minBytes > o->maxBytes)
    return flags.bad("minbytes (-b " + std::to_string(o->minBytes) +
                     ") is larger than maxbytes (-e " + std::to_string(o->maxBytes) + ")");
  if (o->stepFactor <= 1 && o->stepBytes == 0 && o->minBytes < o->maxBytes)
    return flags.bad("-i 0 never reaches maxbytes: give a step size, or a factor with -f");
  if (o->stepFactor > 1 && o->minBytes == 0 && o->maxBytes > 0)
    return flags.bad("-b 0 never grows by a factor (-f): start at 1 byte or more");
  return -1;
}

}  // namespace gperf

// The part of the perf harnesses that knows nothing of gccl, shared by the
// <collective>_perf binaries (perf/common/harness.cc) and the peer harnesses
// (perf/peers/): nccl-tests' sweep flags and their parsing, the series of
// sizes, and nccl-tests' output format (header, rows, footer).
#pragma once

#include <getopt.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace gperf {

// How the calls of a timed loop complete (-z). Every binary that is compared
// with another takes the same values, so that a comparison can time the same
// thing everywhere.
enum class Blocking {
  // -z 0: every call is started (with a request), and all of them are
  // waited for after the loop; nccl-tests' default.
  kNo = 0,
  // -z 1: every call completes, then a barrier; nccl-tests' -z 1.
  kWithBarrier = 1,
  // -z 2: every call completes and the next one starts at once, as an MPI or
  // Gloo program issues blocking calls one after another.
  kBackToBack = 2,
};

// The flags every perf binary takes, with nccl-tests' defaults:
// -b -e -i -f or --sizes (sizes), -n -w (iterations), -c (check), -a (time
// over ranks), -z (completion).
struct SweepOptions {
  size_t minBytes = 32u << 20;
  size_t maxBytes = 32u << 20;
  size_t stepBytes = 1u << 20;
  size_t stepFactor = 1;  // > 1: multiply; else add stepBytes
  // --sizes: these sizes, ascending, instead of the series above (minBytes
  // and maxBytes are then its first and last, for buffers and warm-up).
  std::vector<size_t> sizes;
  int iters = 20;
  int warmupIters = 5;
  int check = 1;    // checked iterations per row; 0 turns checking off
  int average = 1;  // time over ranks: 0 rank 0, 1 mean, 2 min, 3 max
  Blocking blocking = Blocking::kNo;
};

// A byte size like nccl-tests': a number with an optional K, M or G (x1024)
// and an optional B.
bool parseSize(const char* s, size_t* out);
// An integer in [lo, hi] (decimal, or 0x... hex, or 0... octal).
bool parseInt(const char* s, long lo, long hi, long* out);

// One parse of argv with getopt_long: the sweep flags, -h, and the flags a
// binary adds. A bad flag is reported on stderr, when `report` (one rank of
// many is enough), as "<prog>: <why>" and "(<prog> -h lists the flags)".
class FlagParser {
 public:
  FlagParser(int argc, char** argv, bool report);

  // Takes a binary's own flag `c` (its getopt letter) with its value; returns
  // -1 when it is fine, else the exit status from bad() or badValue().
  using Handler = std::function<int(int c, const std::string& value)>;

  // Parses every flag: the sweep flags into `o`, the flags in `more` (each
  // taking a value; its val is the short letter) through `other`. Returns -1
  // to go on, otherwise the exit status: 0 after -h (`usage` printed on
  // stdout when reporting), 2 after a bad flag or a stray argument.
  int parse(SweepOptions* o, void (*usage)(const char* prog, FILE* f),
            const std::vector<option>& more = {}, const Handler& other = nullptr);

  // Reports `why`; returns 2.
  int bad(const std::string& why) const;
  // Reports the value of the flag being parsed as not what it expects
  // ("invalid value 'x' for -b: expected ..."); returns 2.
  int badValue(const std::string& expected) const;

 private:
  int argc_;
  char** argv_;
  bool report_;
  const char* prog_;
  std::string flag_;   // the flag being parsed, as given (-b or --minbytes)
  std::string value_;  // and its value
};

// Calls body(bytes) for each size of the sweep: the --sizes list when there
// is one, else minBytes, then times stepFactor (when > 1) or plus stepBytes,
// while not above maxBytes.
void forEachSize(const SweepOptions& o, const std::function<void(size_t bytes)>& body);

// Seconds on a monotonic clock.
double now();

// Page-aligned and touched, so that first-touch page faults stay out of the
// timed loop. Exits the process when it cannot allocate; free() releases it.
void* allocTouched(size_t bytes);

// nccl-tests' output. The header: "# Collective test starting: <name>", the
// parameters line, and a line for --sizes and for -z 1 or 2.
void printTestStart(const char* name, const SweepOptions& o, int aggIters);
// The column header: the five columns of a row's labels, then time, algbw,
// busbw and #wrong out of place, and again in place when `inPlace`.
// `wire`: a last column, the payload bytes each rank sent per call (mean over
// ranks, out of place).
void printColumnHeader(bool inPlace, const char* timeName, bool wire = false);
// A row's labels: size (B), count (elements), type, redop, root.
std::string rowLabels(size_t bytes, size_t count, const char* type, const char* redop, int root);
// A measurement's columns: time (us), algbw, busbw (GB/s), and #wrong (N/A
// when `check` is 0).
std::string rowResults(double seconds, double algBw, double busBw, int check, int64_t wrong);
// The footer; `bwVerdict` follows the average bus bandwidth ("" for none).
void printTestEnd(const char* name, int failed, double avgBusBw, const char* bwVerdict);

}  // namespace gperf

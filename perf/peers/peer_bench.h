// The driver the peer AllReduce harnesses share (Open MPI, Gloo), so that
// perf/compare reads their rows with the parser it uses for all_reduce_perf.
//
// It follows perf/common/harness.cc wherever that decides a number: warm-up
// at the largest and the smallest size, then per size one untimed call, a
// barrier, `iters` calls timed as one span (time = span / iters), that time
// combined over ranks (-a, mean by default), and the checked calls. The calls
// of a loop complete as -z says, with all_reduce_perf's values: 2 (the
// default here) each blocks and the next follows at once, 1 each blocks and
// is followed by a barrier, 0 all are started and then waited for together
// (where the library has a non-blocking AllReduce).
// Only the out-of-place measurement is made; rows carry the nine
// out-of-place columns of all_reduce_perf (size, count, type, redop, root,
// time, algbw, busbw, #wrong). float32 sum only. The flags (their parsing
// included), the series of sizes and the output format are all_reduce_perf's
// own, from perf/common/sweep.h.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/sweep.h"

namespace peers {

// The nccl-tests flags the harnesses take (the sweep flags of every perf
// binary: -b -e -i -f --sizes -n -w -c -a -z), with nccl-tests' defaults but
// for -z (2 here: a blocking call is what every peer library has).
using Options = gperf::SweepOptions;

enum class Combine { kSum, kMin, kMax };

// What a harness provides: its ranks, the call under test and the two
// collectives the driver needs for its own bookkeeping.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual int rank() const = 0;
  virtual int nranks() const = 0;
  // Out of place: recv[i] = sum over ranks of send[i], i < count. Blocks.
  virtual void allreduce(const float* send, float* recv, size_t count) = 0;
  // The same call started without waiting for it (-z 0), and the wait for
  // every call started so far. Several may be in flight at once, on the
  // same buffers, as all_reduce_perf's -z 0 has them. A backend that has
  // them overrides all three, noNonBlocking() returning ""; otherwise it
  // says why not, and the driver refuses -z 0 before any call.
  virtual void start(const float*, float*, size_t) {
    throw std::logic_error("start() on a backend without a non-blocking AllReduce");
  }
  virtual void waitAll() {}
  virtual std::string noNonBlocking() const { return "this harness has no non-blocking call"; }
  virtual void barrier() = 0;
  // Element-wise over ranks, in place, every rank getting the result.
  virtual void combine(double* values, size_t n, Combine op) = 0;
  // Lines for the header (library, version, algorithm, the calls that -z
  // makes), each after "# ".
  virtual std::vector<std::string> describe(const Options& opt) const = 0;
};

// Parses argv. Returns -1 to go on, otherwise the exit status (0 after -h,
// 2 after a bad flag, reported on stderr when `report`).
int parseOptions(int argc, char** argv, bool report, Options* out);

// Runs the sweep and prints it from rank 0. Returns the exit status: 1 when
// any element was wrong.
int run(const char* name, const Options& opt, Backend& b);

}  // namespace peers

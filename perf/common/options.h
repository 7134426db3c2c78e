// Command-line flags of the perf binaries, spelled as nccl-tests spells them.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/perf.h"

namespace gperf {

struct Options {
  size_t minBytes = 32u << 20;
  size_t maxBytes = 32u << 20;
  size_t stepBytes = 1u << 20;
  size_t stepFactor = 1;  // > 1: multiply; else add stepBytes
  int iters = 20;
  int aggIters = 1;
  int warmupIters = 5;
  int check = 1;  // checked iterations per row; 0 turns checking off
  bool blocking = false;
  int average = 1;  // 0 rank 0, 1 mean, 2 min, 3 max over ranks
  bool reportCpuTime = false;
  std::vector<gcclDataType_t> types = {gcclFloat32};
  std::vector<gcclRedOp_t> ops = {gcclSum};
  std::vector<int> roots = {0};  // an empty list means every rank (-r all)
};

// Parses argv. Returns -1 to go on, otherwise the exit status (0 after -h,
// 2 after a bad flag, with the reason printed on stderr).
int parseOptions(int argc, char** argv, const Collective& coll, Options* out);

// nccl-tests' names: "float", "half", "bfloat16", ...; "sum", "prod", ...
const char* typeName(gcclDataType_t t);
const char* opName(gcclRedOp_t op);
size_t typeSize(gcclDataType_t t);

// Whether this process is rank 0 by its launcher's environment, before the
// communicator exists (so that only one rank reports a bad flag).
bool launcherRankIsZero();
// Whether a launcher (mpirun, srun, torchrun, gcclrun) started this process.
bool underLauncher();

}  // namespace gperf

// Command-line flags of the perf binaries, spelled as nccl-tests spells them.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/perf.h"
#include "common/sweep.h"

namespace gperf {

// The sweep flags (-b -e -i -f -n -w -c -a), and those of the gccl binaries.
struct Options : SweepOptions {
  int aggIters = 1;
  bool reportCpuTime = false;
  std::vector<gcclDataType_t> types = {gcclFloat32};
  std::vector<gcclRedOp_t> ops = {gcclSum};
  std::vector<int> roots = {0};  // an empty list means every rank (-r all)
  // --codec: how the messages travel (gcclCodecNone: as they are).
  gcclCodecConfig_t codec = GCCL_CODEC_CONFIG_INITIALIZER;
  std::string codecName = "none";
};

// Parses a --codec value: f16, bf16, q8, q4, q2 (quantization to nearest; a
// trailing s, as in q8s, rounds stochastically), lattice8:STEP (or 4, 2) and
// topk:FRACTION (exact selection, so that the check knows what was sent).
// False with the reason in *why.
bool parseCodec(const std::string& spec, gcclCodecConfig_t* out, std::string* why);
// The largest error the codec may add to one element of values within
// [-range, range] (0 for none, and for casts of such small integers).
double codecError(const gcclCodecConfig_t& c, double range);

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

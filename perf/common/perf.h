// The shared harness of the nccl-tests-compatible <collective>_perf binaries.
//
// A binary describes its collective in a Collective (how big its buffers are
// for a given count, how to issue one call, what every element of the result
// must be) and hands it to perfMain, which does everything else the way
// nccl-tests does: flags, buffers, warm-up, timing, the correctness check,
// and the output format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gccl/gccl.h"

namespace gperf {

// Element counts of one row, in nccl-tests' terms.
struct Layout {
  size_t sendCount = 0;          // elements read from the send buffer
  size_t recvCount = 0;          // elements written to the receive buffer
  size_t paramCount = 0;         // the `count` argument (the row's count column)
  size_t sendInPlaceOffset = 0;  // in place, send = recv base + rank * this
  size_t recvInPlaceOffset = 0;  // in place, recv = recv base + rank * this
};

// How the check's input values are drawn; see inputValue().
struct ValueGen {
  uint64_t seed = 0;
  int nranks = 1;
  int64_t range = 0;         // values are integers in [-range, range]
  bool nonNegative = false;  // ... or in [0, range] (unsigned types)
  bool product = false;      // for prod: +-1 but for a 2 and a 3 per element index
};

// One call, as the harness asks a collective to issue it.
struct Call {
  const void* send = nullptr;
  void* recv = nullptr;
  Layout layout;
  gcclDataType_t type = gcclFloat32;
  gcclRedOp_t op = gcclSum;
  int root = 0;
  bool inPlace = false;
  uint64_t step = 0;     // gossip step: a counter that every rank advances alike
  bool checked = false;  // the checked iteration: state carried between calls restarts
  ValueGen gen;
};

struct Options;

// What a collective's callbacks may read.
struct Bench {
  gcclComm_t comm = nullptr;
  int rank = 0;
  int nranks = 1;
  const Options* options = nullptr;
};

// A binary fills one of these in main() and passes it to perfMain.
struct Collective {
  const char* name = "";   // "all_reduce": the binary is all_reduce_perf
  bool hasOp = false;      // reduces, so -o matters and the redop column names it
  bool hasRoot = false;    // -r matters and the root column shows it
  bool floatOnly = false;  // accepts floating types only (gossip)
  // Out of place the send buffer must come back unchanged (false when the
  // call's state lives there, as PushSum's x does).
  bool sendUnchanged = true;
  // Results are exact, so they are checked bit for bit (floating averages
  // and gossip mixing round: those are checked within a few units in the
  // last place of the inputs' magnitude).
  bool exact = true;
  // Several calls may share one group (-m > 1).
  bool groupable = true;
  // Largest input magnitude for the check; 0 picks one from the type, the
  // op and the rank count so that no result overflows or rounds.
  int64_t valueRange = 0;
  // busbw = algbw * busFactor(nranks).
  double (*busFactor)(int nranks) = nullptr;
  void (*layout)(size_t count, int nranks, Layout* out) = nullptr;
  // Issues the call. With `requests` non-null every operation is started
  // with a request appended there (the harness waits for them); otherwise
  // every operation blocks.
  gcclResult_t (*issue)(const Bench& b, const Call& c,
                        std::vector<gcclRequest_t>* requests) = nullptr;
  // Writes the expected value of receive elements [begin, begin + n) of this
  // rank into out. Rank r's input element i is inputValue(c.gen, r, i), for
  // i in [0, sendCount).
  void (*expected)(const Bench& b, const Call& c, size_t begin, size_t n, double* out) = nullptr;
  // Optional. False where this rank's receive buffer must come back as it
  // was (Reduce off the root).
  bool (*outputWritten)(const Bench& b, const Call& c) = nullptr;
  // Optional. Wrong results outside the receive buffer (PushSum's weight).
  size_t (*checkExtra)(const Bench& b, const Call& c) = nullptr;
  // Optional: once after init (to build topologies), and before the end.
  gcclResult_t (*setup)(const Bench& b) = nullptr;
  void (*teardown)(const Bench& b) = nullptr;
  // The codecs --codec may name (codecBit of each), 0 for none.
  unsigned codecs = 0;
  // Optional lines for the header, each printed after "# ".
  std::vector<std::string> (*describe)(const Bench& b) = nullptr;
};

inline unsigned codecBit(gcclCodec_t c) {
  return 1u << static_cast<unsigned>(c);
}
// The codecs a gossip tool takes: casts, quantization, the lattice.
inline unsigned gossipCodecs() {
  return codecBit(gcclCodecFloat16) | codecBit(gcclCodecBfloat16) | codecBit(gcclCodecQuantize) |
         codecBit(gcclCodecLattice);
}
// The gossip options for this run's --codec (NULL codec when none).
struct Options;
gcclGossipOptions_t gossipOptions(const Bench& b);

// The value of element `index` of rank `rank`'s input in the checked
// iteration: an integer (or, for products, +-1, 2 or 3) that every type holds
// exactly, so the exact collectives can be checked bit for bit.
double inputValue(const ValueGen& g, int rank, size_t index);

// The reduction of inputValue(g, r, index) over every rank r, as gccl
// defines it (integer averages truncate toward zero).
double reduceInputs(const ValueGen& g, gcclRedOp_t op, gcclDataType_t type, int nranks,
                    size_t index);

// Runs the binary: returns the process exit status.
int perfMain(int argc, char** argv, const Collective& coll);

// Exits the process after a failed gccl call, naming the call and the rank.
void checkOrDie(gcclResult_t r, const char* what, const Bench* b);

}  // namespace gperf

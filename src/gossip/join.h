// Rejoin's model transfer (fault-tolerant mode, core/membership.h). At the
// collective where a restarted rank joins, the graph leaves it out and its
// donor's gossip step also sends it a header and the donor's model; the
// joiner's first call (gcclGossipJoin) receives them.
//
// PushSum keeps mass: the donor hands the joiner a part c of its own share
// (c = a_dd / (k + 1) with k joiners, so the donor keeps as much as each
// joiner gets) and its self weight drops by k c; the joiner starts from
// (c x, c w), whose de-biased model is the donor's. A part the joiner did
// not take (it failed again) stays with the donor. Neighbour averaging has
// no mass: the joiner copies x (c = 1) and the donor changes nothing.
//
// Two layouts, by the donor's step. A PushSum or neighbour-averaging step
// sends the whole tensor on its own tag (kJoinDataStep), the weight in the
// header. An overlap SGP step treats the joiner as one more out-peer of
// weight c: it gets the step's weight (tag step 0) and snapshot (step 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/executor.h"
#include "core/op.h"
#include "gccl/gccl.h"

namespace gccl {

inline constexpr uint64_t kJoinHeaderStep = transport::kMaxTagStep - 1;
inline constexpr uint64_t kJoinDataStep = transport::kMaxTagStep;
inline constexpr size_t kJoinHeaderBytes = 48;

enum class JoinLayout : uint8_t { kWhole = 1, kOverlap = 2 };

struct JoinHeader {
  JoinLayout layout = JoinLayout::kWhole;
  bool pushSum = false;
  bool coded = false;  // the donor's messages are compressed: no join from them
  gcclDataType_t type = gcclFloat32;
  uint64_t count = 0;
  uint64_t step = 0;         // the donor's step argument at the join
  double weight = 0;         // kWhole, PushSum: the donor's weight before the step
  double coefficient = 1.0;  // the part of the donor's model the joiner takes
};

// Layout (little-endian): magic "gcjn" u32, layout u8, pushSum u8, coded u8,
// pad u8, type u32, pad u32, count u64, step u64, weight f64, coefficient f64.
void encodeJoinHeader(const JoinHeader& h, uint8_t* out);
bool decodeJoinHeader(const uint8_t* in, size_t len, JoinHeader* out);

// The ranks this rank gives its model to at collective `seq`.
std::vector<int> joinersFrom(const OpContext& ctx, uint64_t seq);

// gcclGossipJoin: receives the model into x (count elements of type, in
// `mem`) and, for PushSum, the weight into *psWeight (null: neighbour
// averaging); *nextStep gets the step the group's next gossip call uses.
std::unique_ptr<Op> makeJoinOp(void* x, size_t count, gcclDataType_t type, MemoryType mem,
                               double* psWeight, uint64_t* nextStep, gcclRequest* req);

}  // namespace gccl

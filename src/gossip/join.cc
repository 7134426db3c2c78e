// Rejoin's model transfer: the header and the joiner's step (join.h).
#include "gossip/join.h"

#include <cstring>
#include <string>

#include "base/check.h"
#include "base/le.h"
#include "core/engine.h"

namespace gccl {

namespace {

constexpr uint32_t kJoinMagic = 0x6e6a6367;  // "gcjn"

uint64_t bitsOf(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof(b));
  return b;
}
double doubleOf(uint64_t b) {
  double v;
  memcpy(&v, &b, sizeof(v));
  return v;
}

}  // namespace

void encodeJoinHeader(const JoinHeader& h, uint8_t* out) {
  memset(out, 0, kJoinHeaderBytes);
  putLe32(out, kJoinMagic);
  out[4] = static_cast<uint8_t>(h.layout);
  out[5] = h.pushSum ? 1 : 0;
  out[6] = h.coded ? 1 : 0;
  putLe32(out + 8, static_cast<uint32_t>(h.type));
  putLe64(out + 16, h.count);
  putLe64(out + 24, h.step);
  putLe64(out + 32, bitsOf(h.weight));
  putLe64(out + 40, bitsOf(h.coefficient));
}

bool decodeJoinHeader(const uint8_t* in, size_t len, JoinHeader* out) {
  if (len != kJoinHeaderBytes || getLe32(in) != kJoinMagic) return false;
  if (in[4] != static_cast<uint8_t>(JoinLayout::kWhole) &&
      in[4] != static_cast<uint8_t>(JoinLayout::kOverlap))
    return false;
  if (in[5] > 1 || in[6] > 1) return false;
  JoinHeader h;
  h.layout = static_cast<JoinLayout>(in[4]);
  h.pushSum = in[5] != 0;
  h.coded = in[6] != 0;
  h.type = static_cast<gcclDataType_t>(getLe32(in + 8));
  h.count = getLe64(in + 16);
  h.step = getLe64(in + 24);
  h.weight = doubleOf(getLe64(in + 32));
  h.coefficient = doubleOf(getLe64(in + 40));
  *out = h;
  return true;
}

std::vector<int> joinersFrom(const OpContext& ctx, uint64_t seq) {
  std::vector<RankJoin> joins;
  ctx.joinsAt(seq, &joins);
  std::vector<int> mine;
  for (const RankJoin& j : joins)
    if (j.donor == ctx.rank) mine.push_back(j.joiner);
  return mine;
}

namespace {

class JoinOp final : public Op {
 public:
  JoinOp(void* x, size_t count, gcclDataType_t type, MemoryType mem, double* psWeight,
         uint64_t* nextStep, gcclRequest* req)
      : Op(OpKind::kJoin, makeMeta(OpKind::kJoin, type, gcclSum, 0, count), req),
        x_(x),
        count_(count),
        type_(type),
        mem_(mem),
        psWeight_(psWeight),
        nextStep_(nextStep) {}

  // It needs its donor only: other ranks that failed do not stop it.
  bool tolerant() const override { return true; }

  gcclResult_t start(OpContext& ctx) override {
    std::vector<RankJoin> joins;
    ctx.joinsAt(seq, &joins);
    for (const RankJoin& j : joins)
      if (j.joiner == ctx.rank) donor_ = j.donor;
    GCCL_REQUIRE(donor_ >= 0, gcclInternalError,
                 "gcclGossipJoin: this rank does not join at collective #%llu in the agreed view",
                 static_cast<unsigned long long>(seq));
    size_t bytes = count_ * elementSize(type_);
    // Both layouts' receives go up at once, so no message of the donor's
    // ever waits unexpected; the one that does not come is withdrawn.
    GCCL_CHECK(postRecv(ctx, donor_, header_, sizeof(header_), collectiveTag(seq, kJoinHeaderStep),
                        &header, false));
    GCCL_CHECK(postRecv(ctx, donor_, x_, bytes, collectiveTag(seq, kJoinDataStep), &whole, false));
    GCCL_CHECK(postRecv(ctx, donor_, &weight_, sizeof(weight_), collectiveTag(seq, 0),
                        &overlapWeight, false));
    GCCL_CHECK(postRecv(ctx, donor_, x_, bytes, collectiveTag(seq, 1), &overlapData, false));
    return gcclSuccess;
  }

  gcclResult_t progress(OpContext& ctx, bool* done) override {
    *done = false;
    GCCL_CHECK(why(checkTransfer(header)));
    if (header.pending()) return gcclSuccess;
    if (!decoded_) {
      GCCL_REQUIRE(decodeJoinHeader(header_, header.req.bytes, &h_), gcclRemoteError,
                   "gcclGossipJoin: rank %d sent a malformed join header (%zu bytes)", donor_,
                   header.req.bytes);
      decoded_ = true;
      GCCL_CHECK(validate());
    }
    bool whole = h_.layout == JoinLayout::kWhole;
    const Transfer& data = whole ? this->whole : overlapData;
    GCCL_CHECK(why(checkTransfer(data)));
    if (data.pending()) return gcclSuccess;
    if (!whole) {
      GCCL_CHECK(why(checkTransfer(overlapWeight)));
      if (overlapWeight.pending()) return gcclSuccess;
    }
    cancelPending(ctx);  // the other layout's receives
    GCCL_REQUIRE(data.req.bytes == count_ * elementSize(type_), gcclRemoteError,
                 "gcclGossipJoin: rank %d sent %zu bytes of model, not %zu", donor_, data.req.bytes,
                 count_ * elementSize(type_));
    if (h_.pushSum) {
      // A donor whose graph keeps nothing of its own at that step (self
      // weight 0) has no share to give.
      GCCL_REQUIRE(h_.coefficient > 0 && (whole ? h_.weight : weight_) > 0, gcclInvalidUsage,
                   "gcclGossipJoin: rank %d keeps no share of its own at step %llu (its self "
                   "weight in the graph is 0), so it cannot give this rank a model; use a graph "
                   "with self weights",
                   donor_, static_cast<unsigned long long>(h_.step));
      if (h_.coefficient != 1.0 && count_ > 0)
        GCCL_CHECK(ctx.exec->scale(x_, h_.coefficient, count_, type_, mem_));
      *psWeight_ = h_.coefficient * (whole ? h_.weight : weight_);
    }
    *nextStep_ = h_.step + 1;
    *done = true;
    return gcclSuccess;
  }

 private:
  gcclResult_t why(gcclResult_t r) {
    if (r == gcclSuccess) return r;
    return setError(r,
                    "gcclGossipJoin: the model from rank %d did not arrive: %s (the joiner must "
                    "rejoin again)",
                    donor_, threadLastError());
  }
  gcclResult_t validate() {
    GCCL_REQUIRE(!h_.coded, gcclInvalidUsage,
                 "gcclGossipJoin: the group's step at collective #%llu is compressed (a codec in "
                 "gcclGossipCreateEx); a rank can only join at an uncompressed step",
                 static_cast<unsigned long long>(seq));
    GCCL_REQUIRE(h_.pushSum == (psWeight_ != nullptr), gcclInvalidUsage,
                 "gcclGossipJoin: the group runs %s; pass psWeight %s",
                 h_.pushSum ? "PushSum" : "neighbour averaging",
                 h_.pushSum ? "(the weight to start from)" : "NULL");
    GCCL_REQUIRE(h_.count == count_ && h_.type == type_, gcclInvalidUsage,
                 "gcclGossipJoin: the group's model is count=%llu of %s; this rank asked for "
                 "count=%zu of %s",
                 static_cast<unsigned long long>(h_.count), dataTypeName(h_.type), count_,
                 dataTypeName(type_));
    return gcclSuccess;
  }

  void* x_;
  size_t count_;
  gcclDataType_t type_;
  MemoryType mem_;
  double* psWeight_;
  uint64_t* nextStep_;
  int donor_ = -1;
  uint8_t header_[kJoinHeaderBytes] = {};
  double weight_ = 0;
  bool decoded_ = false;
  JoinHeader h_;
  Transfer header, whole, overlapWeight, overlapData;
};

}  // namespace

std::unique_ptr<Op> makeJoinOp(void* x, size_t count, gcclDataType_t type, MemoryType mem,
                               double* psWeight, uint64_t* nextStep, gcclRequest* req) {
  return std::make_unique<JoinOp>(x, count, type, mem, psWeight, nextStep, req);
}

}  // namespace gccl

// The layout of the 64-bit tags that match a send with its receive, in one
// place. Transports match on the whole tag and look only at kAsyncTagBit
// (such traffic never queues behind ordinary messages); the engine builds
// them:
//
//   bit 63 = 1            point-to-point: bits 0..62 the per-peer sequence
//   bit 63 = 0, bit 62 = 1  asynchronous service traffic (pairwise gossip):
//                        the service's own layout below bit 62
//   bit 63 = 0, bit 62 = 0  a collective: bits 24..61 its sequence number
//                        (the same on every rank), bits 0..23 the step
#pragma once

#include <cstdint>

namespace gccl::transport {

inline constexpr uint64_t kP2PTagBit = 1ull << 63;
inline constexpr uint64_t kAsyncTagBit = 1ull << 62;
// Asynchronous traffic: bits 48..61 name the object that exchanges it
// (pairwise gossip objects take ids from 0 up); the last id is the engine's
// membership agreement (fault-tolerant mode), bits 0..47 its per-peer sequence.
inline constexpr uint64_t kMaxAsyncObjectId = 0x3ffe;
inline constexpr uint64_t kMembershipTagBase = kAsyncTagBit | (0x3fffull << 48);
// A receive of the membership agreement stays posted in case the peer ever
// speaks: when the peer says goodbye and leaves, it is no data this rank
// still expected.
inline bool isStandingTag(uint64_t tag) {
  return (tag & ~((1ull << 48) - 1)) == kMembershipTagBase;
}
inline constexpr int kTagStepBits = 24;
inline constexpr uint64_t kMaxTagStep = (1ull << kTagStepBits) - 1;

inline uint64_t collectiveTag(uint64_t seq, uint64_t step) {
  return (seq << kTagStepBits) | (step & kMaxTagStep);
}
inline uint64_t p2pTag(uint64_t seq) {
  return kP2PTagBit | seq;
}
// What kind of traffic a tag belongs to, and a collective's sequence number.
inline bool isP2PTag(uint64_t tag) {
  return (tag & kP2PTagBit) != 0;
}
inline bool isAsyncTag(uint64_t tag) {
  return !isP2PTag(tag) && (tag & kAsyncTagBit) != 0;
}
inline bool isCollectiveTag(uint64_t tag) {
  return (tag & (kP2PTagBit | kAsyncTagBit)) == 0;
}
inline uint64_t tagSequence(uint64_t tag) {
  return tag >> kTagStepBits;
}

}  // namespace gccl::transport

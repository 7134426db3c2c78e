// The TCP wire format. Every frame starts with a fixed 64-byte header of
// little-endian fixed-width fields:
//
//   off size field
//     0    4 magic        kFrameMagic ("GCCL" in memory order)
//     4    2 version      kWireVersion
//     6    2 type         FrameType
//     8    8 commHash     identifies the communicator (from the unique id)
//    16    8 tag          matching key of the message
//    24    8 metaInfo     sender's operation signature (see transport.h)
//    32    8 metaCount    sender's element count
//    40    8 totalBytes   size of the whole message
//    48    8 offset       where this frame's payload goes in the message
//    56    8 length       payload bytes following this header
//
// A message larger than the striping threshold is cut into one frame per
// socket; each frame says where its bytes go, so the sockets are independent.
// Anything that does not decode is rejected and the connection closed.
// Socket 0 of every peer connection is a control socket that only carries
// kAbort/kPing/kPong/kClose; it is never paused, so an abort notice or a
// liveness probe gets through even while data sockets wait for a receive.
// Socket 1 carries only asynchronous messages (transport::kAsyncTagBit);
// the data sockets follow.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gccl/gccl.h"

namespace gccl::tcp {

inline constexpr uint32_t kFrameMagic = 0x4c434347u;  // bytes 'G','C','C','L'
inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 64;
// No single message may exceed this (a corrupt length must not make us wait forever).
inline constexpr uint64_t kMaxMessageBytes = 1ull << 46;

enum class FrameType : uint16_t {
  kData = 1,   // payload of a tagged message (data sockets only)
  kAbort = 2,  // the sender is aborting; payload is the reason (control socket)
  kPing = 3,   // liveness probe: the peer's progress thread answers kPong (control socket)
  kPong = 4,   // payload: the answering rank's liveness report (transport.h), opaque here
  kClose = 5,  // the sender destroyed its communicator normally (control socket)
};
inline constexpr uint16_t kMaxFrameType = 5;
inline constexpr size_t kMaxAbortReasonBytes = 1024;
// A pong carries the answering rank's liveness report (transport.h), at most this long.
inline constexpr size_t kMaxPongPayloadBytes = 512;

struct FrameHeader {
  FrameType type = FrameType::kData;
  uint64_t commHash = 0;
  uint64_t tag = 0;
  uint64_t metaInfo = 0;
  uint64_t metaCount = 0;
  uint64_t totalBytes = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};

void encodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderBytes]);
// Decodes and validates: magic, version, type, communicator, offset + length
// within totalBytes, sizes within limits. On failure returns gcclInternalError
// with the reason recorded (see core/check.h) and leaves *out unchanged.
gcclResult_t decodeFrameHeader(const uint8_t in[kFrameHeaderBytes], uint64_t expectedCommHash,
                               FrameHeader* out);

// Little-endian helpers shared by the wire formats.
inline void putLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void putLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void putLe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline uint64_t getLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}
inline uint32_t getLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
inline uint16_t getLe16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

}  // namespace gccl::tcp

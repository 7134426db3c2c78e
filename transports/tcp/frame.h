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

#include "base/le.h"
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

// The wire formats' little-endian fields (base/le.h).
using gccl::getLe16;
using gccl::getLe32;
using gccl::getLe64;
using gccl::putLe16;
using gccl::putLe32;
using gccl::putLe64;

}  // namespace gccl::tcp

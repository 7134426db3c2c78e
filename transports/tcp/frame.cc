#include "transports/tcp/frame.h"

#include <cinttypes>

#include "base/check.h"

namespace gccl::tcp {

void encodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderBytes]) {
  putLe32(out + 0, kFrameMagic);
  putLe16(out + 4, kWireVersion);
  putLe16(out + 6, static_cast<uint16_t>(h.type));
  putLe64(out + 8, h.commHash);
  putLe64(out + 16, h.tag);
  putLe64(out + 24, h.metaInfo);
  putLe64(out + 32, h.metaCount);
  putLe64(out + 40, h.totalBytes);
  putLe64(out + 48, h.offset);
  putLe64(out + 56, h.length);
}

gcclResult_t decodeFrameHeader(const uint8_t in[kFrameHeaderBytes], uint64_t expectedCommHash,
                               FrameHeader* out) {
  uint32_t magic = getLe32(in + 0);
  GCCL_REQUIRE(magic == kFrameMagic, gcclInternalError,
               "frame rejected: bad magic 0x%08x (expected 0x%08x)", magic, kFrameMagic);
  uint16_t version = getLe16(in + 4);
  GCCL_REQUIRE(version == kWireVersion, gcclInternalError,
               "frame rejected: wire version %u, this build speaks %u", version, kWireVersion);
  FrameHeader h;
  uint16_t type = getLe16(in + 6);
  GCCL_REQUIRE(type >= 1 && type <= kMaxFrameType, gcclInternalError,
               "frame rejected: unknown frame type %u", type);
  h.type = static_cast<FrameType>(type);
  h.commHash = getLe64(in + 8);
  GCCL_REQUIRE(h.commHash == expectedCommHash, gcclInternalError,
               "frame rejected: communicator hash %016" PRIx64
               " is not this communicator's %016" PRIx64,
               h.commHash, expectedCommHash);
  h.tag = getLe64(in + 16);
  h.metaInfo = getLe64(in + 24);
  h.metaCount = getLe64(in + 32);
  h.totalBytes = getLe64(in + 40);
  h.offset = getLe64(in + 48);
  h.length = getLe64(in + 56);
  GCCL_REQUIRE(h.totalBytes <= kMaxMessageBytes, gcclInternalError,
               "frame rejected: message size %" PRIu64 " exceeds the limit", h.totalBytes);
  GCCL_REQUIRE(h.offset <= h.totalBytes && h.length <= h.totalBytes - h.offset, gcclInternalError,
               "frame rejected: payload [%" PRIu64 ", +%" PRIu64 ") outside a message of %" PRIu64
               " bytes",
               h.offset, h.length, h.totalBytes);
  if (h.type != FrameType::kData) {
    GCCL_REQUIRE(h.length <= kMaxAbortReasonBytes && h.offset == 0 && h.length == h.totalBytes,
                 gcclInternalError, "frame rejected: control frame with %" PRIu64 " payload bytes",
                 h.length);
    GCCL_REQUIRE(h.type != FrameType::kPong || h.length <= kMaxPongPayloadBytes, gcclInternalError,
                 "frame rejected: pong with %" PRIu64 " payload bytes", h.length);
    GCCL_REQUIRE(h.type == FrameType::kAbort || h.type == FrameType::kPong || h.length == 0,
                 gcclInternalError, "frame rejected: control frame type %u carries a payload",
                 type);
  }
  *out = h;
  return gcclSuccess;
}

}  // namespace gccl::tcp

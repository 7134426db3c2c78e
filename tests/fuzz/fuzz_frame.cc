// The frame header decoder (transports/tcp/frame.h) on arbitrary wire bytes.
// Besides surviving them, it must keep its contract: a header it accepts
// satisfies every bound the receive path relies on and encodes back to the
// same 64 bytes; a header it rejects leaves the output untouched and says why.
// A header built field by field decodes exactly when the rules in frame.h say
// it is valid, and then to the same fields.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "base/check.h"
#include "fuzz/formats.h"
#include "fuzz/fuzz_input.h"
#include "transports/tcp/frame.h"

namespace gccl::fuzz {
namespace {

using tcp::FrameHeader;
using tcp::FrameType;
using tcp::kFrameHeaderBytes;

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "fuzz_frame: %s\n", what);
  abort();
}

bool sameHeader(const FrameHeader& a, const FrameHeader& b) {
  return a.type == b.type && a.commHash == b.commHash && a.tag == b.tag &&
         a.metaInfo == b.metaInfo && a.metaCount == b.metaCount && a.totalBytes == b.totalBytes &&
         a.offset == b.offset && a.length == b.length;
}

// The rules of frame.h, written out independently of the decoder.
bool valid(uint16_t type, const FrameHeader& h, uint64_t expectedHash) {
  if (type < 1 || type > tcp::kMaxFrameType) return false;
  if (h.commHash != expectedHash) return false;
  if (h.totalBytes > tcp::kMaxMessageBytes) return false;
  if (h.offset > h.totalBytes || h.length > h.totalBytes - h.offset) return false;
  if (type == static_cast<uint16_t>(FrameType::kData)) return true;
  if (h.offset != 0 || h.length != h.totalBytes || h.length > tcp::kMaxAbortReasonBytes)
    return false;
  if (type == static_cast<uint16_t>(FrameType::kPong)) return h.length <= tcp::kMaxPongPayloadBytes;
  return type == static_cast<uint16_t>(FrameType::kAbort) || h.length == 0;
}

FrameHeader sentinel() {
  FrameHeader h;
  h.type = FrameType::kPong;
  h.commHash = 0x5e5e5e5e5e5e5e5eull;
  h.tag = h.metaInfo = h.metaCount = h.totalBytes = h.offset = h.length = 0x5e;
  return h;
}

void checkWireBytes(const uint8_t* data, size_t size) {
  // A heap copy of exactly one header, so that AddressSanitizer sees any read past it.
  std::unique_ptr<uint8_t[]> wire(new uint8_t[kFrameHeaderBytes]());
  memcpy(wire.get(), data, size < kFrameHeaderBytes ? size : kFrameHeaderBytes);
  uint64_t expected = size >= kFrameHeaderBytes + 8 ? tcp::getLe64(data + kFrameHeaderBytes)
                                                    : tcp::getLe64(wire.get() + 8);

  FrameHeader out = sentinel();
  clearThreadLastError();
  gcclResult_t r = tcp::decodeFrameHeader(wire.get(), expected, &out);
  if (r != gcclSuccess) {
    if (!sameHeader(out, sentinel())) fail("a rejected header changed the output");
    if (threadLastError()[0] == '\0') fail("a rejected header left no reason");
    return;
  }
  uint16_t type = static_cast<uint16_t>(out.type);
  if (!valid(type, out, expected)) fail("an accepted header breaks the rules of frame.h");
  uint8_t again[kFrameHeaderBytes];
  tcp::encodeFrameHeader(out, again);
  if (memcmp(again, wire.get(), kFrameHeaderBytes) != 0)
    fail("an accepted header does not encode back to its bytes");
}

void checkFields(FuzzInput in) {
  uint16_t type = in.u16();
  FrameHeader h;
  h.type = static_cast<FrameType>(type);
  h.commHash = in.u64();
  h.tag = in.u64();
  h.metaInfo = in.u64();
  h.metaCount = in.u64();
  h.totalBytes = in.u64();
  h.offset = in.u64();
  h.length = in.u64();
  uint8_t wire[kFrameHeaderBytes];
  tcp::encodeFrameHeader(h, wire);
  FrameHeader out;
  bool accepted = tcp::decodeFrameHeader(wire, kCommHash, &out) == gcclSuccess;
  if (accepted != valid(type, h, kCommHash))
    fail(accepted ? "the decoder accepts a header frame.h rules out"
                  : "the decoder rejects a header frame.h allows");
  if (accepted && !sameHeader(out, h)) fail("a header does not survive encode and decode");
}

}  // namespace
}  // namespace gccl::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gccl::fuzz::checkWireBytes(data, size);
  size_t fieldsAt = gccl::tcp::kFrameHeaderBytes + 8;
  if (size > fieldsAt)
    gccl::fuzz::checkFields(gccl::fuzz::FuzzInput(data + fieldsAt, size - fieldsAt));
  return 0;
}

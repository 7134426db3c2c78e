// The TCP frame header (transports/tcp/frame.h): the documented byte layout,
// the encode/decode round trip, every reason a header is rejected (with the
// output left untouched and the reason recorded), and a fuzz run that checks
// every header the decoder accepts is one the transport can trust.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

#include "base/check.h"
#include "transports/tcp/frame.h"

namespace gccl::tcp {
namespace {

constexpr uint64_t kHash = 0x0123456789abcdefull;

using Bytes = uint8_t[kFrameHeaderBytes];

bool sameHeader(const FrameHeader& a, const FrameHeader& b) {
  return a.type == b.type && a.commHash == b.commHash && a.tag == b.tag &&
         a.metaInfo == b.metaInfo && a.metaCount == b.metaCount && a.totalBytes == b.totalBytes &&
         a.offset == b.offset && a.length == b.length;
}

// A header with a distinct value in every field, so that a swapped or
// truncated field cannot go unnoticed.
FrameHeader distinctDataHeader() {
  FrameHeader h;
  h.type = FrameType::kData;
  h.commHash = kHash;
  h.tag = 0x1112131415161718ull;
  h.metaInfo = 0x2122232425262728ull;
  h.metaCount = 0x3132333435363738ull;
  h.totalBytes = 1000000;
  h.offset = 250000;
  h.length = 500000;
  return h;
}

// What a rejected decode must leave in place.
FrameHeader sentinelHeader() {
  FrameHeader h;
  h.type = FrameType::kPong;
  h.commHash = 0xdeaddeaddeaddeadull;
  h.tag = 1;
  h.metaInfo = 2;
  h.metaCount = 3;
  h.totalBytes = 4;
  h.offset = 5;
  h.length = 6;
  return h;
}

FrameHeader controlHeader(FrameType type, uint64_t payload) {
  FrameHeader h;
  h.type = type;
  h.commHash = kHash;
  h.totalBytes = payload;
  h.offset = 0;
  h.length = payload;
  return h;
}

FrameHeader dataHeader(uint64_t totalBytes, uint64_t offset, uint64_t length) {
  FrameHeader h;
  h.type = FrameType::kData;
  h.commHash = kHash;
  h.tag = 7;
  h.totalBytes = totalBytes;
  h.offset = offset;
  h.length = length;
  return h;
}

// Decodes `bytes` expecting a rejection: checks the result, that the output is
// untouched and that the recorded reason contains `reason`.
void expectRejected(const Bytes bytes, const char* reason, uint64_t expectedHash = kHash) {
  clearThreadLastError();
  FrameHeader out = sentinelHeader();
  EXPECT_EQ(decodeFrameHeader(bytes, expectedHash, &out), gcclInternalError);
  EXPECT_TRUE(sameHeader(out, sentinelHeader())) << "a rejected decode wrote its output";
  EXPECT_NE(std::string(threadLastError()).find(reason), std::string::npos)
      << "reason \"" << threadLastError() << "\" does not name \"" << reason << "\"";
}

void expectRejected(const FrameHeader& h, const char* reason) {
  Bytes bytes;
  encodeFrameHeader(h, bytes);
  expectRejected(bytes, reason);
}

void expectAccepted(const FrameHeader& h) {
  Bytes bytes;
  encodeFrameHeader(h, bytes);
  FrameHeader out = sentinelHeader();
  ASSERT_EQ(decodeFrameHeader(bytes, kHash, &out), gcclSuccess) << threadLastError();
  EXPECT_TRUE(sameHeader(out, h));
}

// ---- Layout and round trip ----------------------------------------------

TEST(FrameHeader, EncodesTheDocumentedLittleEndianLayout) {
  Bytes bytes;
  encodeFrameHeader(distinctDataHeader(), bytes);
  const uint8_t preamble[] = {'G', 'C', 'C', 'L', 1, 0, 1, 0};
  EXPECT_EQ(std::memcmp(bytes, preamble, sizeof(preamble)), 0);
  EXPECT_EQ(getLe64(bytes + 8), kHash);
  EXPECT_EQ(bytes[8], 0xef);  // least significant byte first
  EXPECT_EQ(getLe64(bytes + 16), 0x1112131415161718ull);
  EXPECT_EQ(getLe64(bytes + 24), 0x2122232425262728ull);
  EXPECT_EQ(getLe64(bytes + 32), 0x3132333435363738ull);
  EXPECT_EQ(getLe64(bytes + 40), 1000000u);
  EXPECT_EQ(getLe64(bytes + 48), 250000u);
  EXPECT_EQ(getLe64(bytes + 56), 500000u);
}

TEST(FrameHeader, RoundTripPreservesEveryField) {
  FrameHeader in = distinctDataHeader();
  Bytes bytes;
  encodeFrameHeader(in, bytes);
  FrameHeader out = sentinelHeader();
  ASSERT_EQ(decodeFrameHeader(bytes, kHash, &out), gcclSuccess) << threadLastError();
  EXPECT_EQ(out.type, in.type);
  EXPECT_EQ(out.commHash, in.commHash);
  EXPECT_EQ(out.tag, in.tag);
  EXPECT_EQ(out.metaInfo, in.metaInfo);
  EXPECT_EQ(out.metaCount, in.metaCount);
  EXPECT_EQ(out.totalBytes, in.totalBytes);
  EXPECT_EQ(out.offset, in.offset);
  EXPECT_EQ(out.length, in.length);
}

TEST(FrameHeader, RoundTripPreservesAllOnesFields) {
  FrameHeader in = dataHeader(kMaxMessageBytes, 0, kMaxMessageBytes);
  in.commHash = ~0ull;
  in.tag = ~0ull;
  in.metaInfo = ~0ull;
  in.metaCount = ~0ull;
  Bytes bytes;
  encodeFrameHeader(in, bytes);
  FrameHeader out;
  ASSERT_EQ(decodeFrameHeader(bytes, ~0ull, &out), gcclSuccess) << threadLastError();
  EXPECT_TRUE(sameHeader(out, in));
}

TEST(FrameHeader, RoundTripPreservesEveryControlType) {
  expectAccepted(controlHeader(FrameType::kAbort, 17));
  expectAccepted(controlHeader(FrameType::kPing, 0));
  expectAccepted(controlHeader(FrameType::kPong, 0));
  expectAccepted(controlHeader(FrameType::kClose, 0));
}

TEST(FrameHeader, AcceptsPayloadsThatEndExactlyAtTheMessageEnd) {
  expectAccepted(dataHeader(100, 0, 100));
  expectAccepted(dataHeader(100, 60, 40));
  expectAccepted(dataHeader(100, 100, 0));
  expectAccepted(dataHeader(0, 0, 0));
}

TEST(FrameHeader, AcceptsAMessageOfExactlyTheLimit) {
  expectAccepted(dataHeader(kMaxMessageBytes, kMaxMessageBytes - 1, 1));
}

TEST(FrameHeader, AcceptsAnAbortReasonOfExactlyTheLimit) {
  expectAccepted(controlHeader(FrameType::kAbort, kMaxAbortReasonBytes));
}

// ---- Rejections -----------------------------------------------------------

TEST(FrameHeader, RejectsBadMagic) {
  Bytes bytes;
  encodeFrameHeader(distinctDataHeader(), bytes);
  bytes[0] = 'X';
  expectRejected(bytes, "bad magic");
}

TEST(FrameHeader, RejectsWrongVersion) {
  Bytes bytes;
  encodeFrameHeader(distinctDataHeader(), bytes);
  putLe16(bytes + 4, kWireVersion + 1);
  expectRejected(bytes, "wire version");
  putLe16(bytes + 4, 0);
  expectRejected(bytes, "wire version");
}

TEST(FrameHeader, RejectsUnknownTypeZero) {
  Bytes bytes;
  encodeFrameHeader(distinctDataHeader(), bytes);
  putLe16(bytes + 6, 0);
  expectRejected(bytes, "unknown frame type 0");
}

TEST(FrameHeader, RejectsUnknownTypeSix) {
  Bytes bytes;
  encodeFrameHeader(distinctDataHeader(), bytes);
  putLe16(bytes + 6, kMaxFrameType + 1);
  expectRejected(bytes, "unknown frame type 6");
}

TEST(FrameHeader, RejectsUnknownTypeWithHighBitSet) {
  Bytes bytes;
  encodeFrameHeader(distinctDataHeader(), bytes);
  putLe16(bytes + 6, 0x8001);
  expectRejected(bytes, "unknown frame type");
}

TEST(FrameHeader, RejectsAnotherCommunicatorsHash) {
  Bytes bytes;
  encodeFrameHeader(distinctDataHeader(), bytes);
  expectRejected(bytes, "communicator hash", kHash ^ 1);
}

TEST(FrameHeader, RejectsPayloadEndingPastTheMessage) {
  expectRejected(dataHeader(100, 60, 41), "outside a message");
}

TEST(FrameHeader, RejectsOffsetPastTheMessage) {
  expectRejected(dataHeader(100, 101, 0), "outside a message");
}

TEST(FrameHeader, RejectsOffsetPlusLengthThatOverflowsUint64) {
  // offset + length wraps around to 4, which a naive sum would accept.
  expectRejected(dataHeader(100, 10, UINT64_MAX - 5), "outside a message");
  expectRejected(dataHeader(100, UINT64_MAX, 2), "outside a message");
  expectRejected(dataHeader(100, UINT64_MAX, UINT64_MAX), "outside a message");
  expectRejected(dataHeader(kMaxMessageBytes, kMaxMessageBytes, UINT64_MAX), "outside a message");
}

TEST(FrameHeader, RejectsMessageOverTheSizeLimit) {
  expectRejected(dataHeader(kMaxMessageBytes + 1, 0, 1), "exceeds the limit");
  expectRejected(dataHeader(UINT64_MAX, 0, 1), "exceeds the limit");
  expectRejected(dataHeader(UINT64_MAX, UINT64_MAX, 0), "exceeds the limit");
}

TEST(FrameHeader, RejectsAbortReasonOverTheLimit) {
  expectRejected(controlHeader(FrameType::kAbort, kMaxAbortReasonBytes + 1),
                 "control frame with 1025 payload bytes");
}

TEST(FrameHeader, RejectsControlFrameWithNonZeroOffset) {
  FrameHeader h = controlHeader(FrameType::kAbort, 10);
  h.totalBytes = 20;
  h.offset = 10;
  expectRejected(h, "control frame with");
}

TEST(FrameHeader, RejectsControlFrameThatIsPartOfALargerMessage) {
  FrameHeader h = controlHeader(FrameType::kAbort, 10);
  h.totalBytes = 20;
  expectRejected(h, "control frame with");
}

TEST(FrameHeader, RejectsPingCarryingAPayload) {
  expectRejected(controlHeader(FrameType::kPing, 1), "carries a payload");
}

TEST(FrameHeader, AcceptsPongCarryingALivenessReport) {
  expectAccepted(controlHeader(FrameType::kPong, 8));
  expectAccepted(controlHeader(FrameType::kPong, kMaxPongPayloadBytes));
}

TEST(FrameHeader, RejectsPongOverTheReportLimit) {
  expectRejected(controlHeader(FrameType::kPong, kMaxPongPayloadBytes + 1), "pong with 513");
}

TEST(FrameHeader, RejectsCloseCarryingAPayload) {
  expectRejected(controlHeader(FrameType::kClose, kMaxAbortReasonBytes), "carries a payload");
}

// ---- Fuzzing --------------------------------------------------------------

// Checks what every accepted header must satisfy; returns false (with a
// gtest failure) otherwise. A rejected header must leave the output alone.
bool decodeAndCheck(const Bytes bytes, uint64_t* accepted) {
  FrameHeader out = sentinelHeader();
  gcclResult_t r = decodeFrameHeader(bytes, kHash, &out);
  if (r != gcclSuccess) {
    EXPECT_EQ(r, gcclInternalError);
    EXPECT_TRUE(sameHeader(out, sentinelHeader())) << "a rejected decode wrote its output";
    return r == gcclInternalError && sameHeader(out, sentinelHeader());
  }
  ++*accepted;
  uint16_t type = static_cast<uint16_t>(out.type);
  bool ok = type >= 1 && type <= kMaxFrameType && out.commHash == kHash &&
            out.totalBytes <= kMaxMessageBytes && out.offset <= out.totalBytes &&
            out.length <= out.totalBytes - out.offset;
  if (ok && out.type != FrameType::kData) {
    ok = out.offset == 0 && out.length == out.totalBytes && out.length <= kMaxAbortReasonBytes &&
         (out.type == FrameType::kAbort || out.length == 0 ||
          (out.type == FrameType::kPong && out.length <= kMaxPongPayloadBytes));
  }
  // What was accepted is what was sent.
  ok = ok && getLe32(bytes) == kFrameMagic && getLe16(bytes + 4) == kWireVersion &&
       getLe16(bytes + 6) == type && getLe64(bytes + 16) == out.tag &&
       getLe64(bytes + 24) == out.metaInfo && getLe64(bytes + 32) == out.metaCount &&
       getLe64(bytes + 40) == out.totalBytes && getLe64(bytes + 48) == out.offset &&
       getLe64(bytes + 56) == out.length;
  EXPECT_TRUE(ok) << "accepted an invalid header: type " << type << " hash " << out.commHash
                  << " total " << out.totalBytes << " offset " << out.offset << " length "
                  << out.length;
  return ok;
}

constexpr int kFuzzIterations = 200000;

TEST(FrameHeaderFuzz, RandomHeadersNeverYieldAnInvalidFrame) {
  std::mt19937_64 rng(0x6763636c01ull);
  uint64_t accepted = 0;
  Bytes bytes;
  for (int i = 0; i < kFuzzIterations; ++i) {
    for (size_t w = 0; w < kFrameHeaderBytes; w += 8)
      putLe64(bytes + w, rng());
    ASSERT_TRUE(decodeAndCheck(bytes, &accepted)) << "iteration " << i;
  }
}

TEST(FrameHeaderFuzz, MutatedValidHeadersNeverYieldAnInvalidFrame) {
  const FrameHeader seeds[] = {
      distinctDataHeader(),
      dataHeader(100, 60, 40),
      dataHeader(0, 0, 0),
      dataHeader(kMaxMessageBytes, 0, kMaxMessageBytes),
      controlHeader(FrameType::kAbort, kMaxAbortReasonBytes),
      controlHeader(FrameType::kAbort, 3),
      controlHeader(FrameType::kPing, 0),
      controlHeader(FrameType::kPong, 0),
      controlHeader(FrameType::kClose, 0),
  };
  constexpr size_t kSeeds = sizeof(seeds) / sizeof(seeds[0]);
  std::mt19937_64 rng(0x6763636c02ull);
  uint64_t accepted = 0;
  Bytes bytes;
  for (int i = 0; i < kFuzzIterations; ++i) {
    encodeFrameHeader(seeds[static_cast<size_t>(i) % kSeeds], bytes);
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      size_t at = rng() % kFrameHeaderBytes;
      bytes[at] ^= static_cast<uint8_t>(1 + rng() % 255);  // never a no-op
    }
    ASSERT_TRUE(decodeAndCheck(bytes, &accepted)) << "iteration " << i;
  }
  // Flips in tag/metaInfo/metaCount keep a header valid: the accepting path was exercised.
  EXPECT_GT(accepted, static_cast<uint64_t>(kFuzzIterations / 20));
}

// Valid preamble and hash, random type and sizes drawn from the edges of the
// checks, so that the size checks (not the magic check) decide.
TEST(FrameHeaderFuzz, EdgeValuedSizesNeverYieldAnInvalidFrame) {
  const uint64_t edges[] = {0,
                            1,
                            2,
                            kMaxAbortReasonBytes - 1,
                            kMaxAbortReasonBytes,
                            kMaxAbortReasonBytes + 1,
                            kMaxMessageBytes - 1,
                            kMaxMessageBytes,
                            kMaxMessageBytes + 1,
                            UINT64_MAX / 2,
                            UINT64_MAX / 2 + 1,
                            UINT64_MAX - 1,
                            UINT64_MAX};
  constexpr size_t kEdges = sizeof(edges) / sizeof(edges[0]);
  std::mt19937_64 rng(0x6763636c03ull);
  auto pick = [&]() -> uint64_t {
    uint64_t r = rng();
    return (r & 3) == 0 ? (r >> 2) % (kMaxMessageBytes + 2) : edges[(r >> 2) % kEdges];
  };
  uint64_t accepted = 0;
  Bytes bytes;
  for (int i = 0; i < kFuzzIterations; ++i) {
    FrameHeader h;
    h.commHash = kHash;
    h.tag = rng();
    h.metaInfo = rng();
    h.metaCount = rng();
    h.totalBytes = pick();
    h.offset = pick();
    h.length = pick();
    encodeFrameHeader(h, bytes);
    putLe16(bytes + 6, static_cast<uint16_t>(rng() % (kMaxFrameType + 2)));
    ASSERT_TRUE(decodeAndCheck(bytes, &accepted)) << "iteration " << i;
  }
  EXPECT_GT(accepted, 0u);
}

}  // namespace
}  // namespace gccl::tcp

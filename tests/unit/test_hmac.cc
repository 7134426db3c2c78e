// SHA-256 against FIPS 180-2/NIST vectors, HMAC-SHA-256 against RFC 4231, and
// the incremental forms against the one-shot ones.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/check.h"
#include "base/hmac.h"

namespace gccl {
namespace {

std::string toHex(const uint8_t* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 0xf];
  }
  return s;
}

std::string sha256Hex(const std::string& msg) {
  uint8_t out[kSha256Bytes];
  sha256(msg.data(), msg.size(), out);
  return toHex(out, sizeof(out));
}

std::string hmacHex(const std::vector<uint8_t>& key, const std::string& msg) {
  uint8_t out[kSha256Bytes];
  hmacSha256(key.data(), key.size(), msg.data(), msg.size(), out);
  return toHex(out, sizeof(out));
}

TEST(Sha256, EmptyMessage) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockMessage448Bits) {
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, Message896Bits) {
  EXPECT_EQ(sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
                      "jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256, OneMillionA) {
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, OneMillionAInUnevenPieces) {
  // 997 is prime, so pieces straddle block boundaries at every offset.
  std::string piece(997, 'a');
  Sha256 s;
  size_t left = 1000000;
  while (left > 0) {
    size_t n = left < piece.size() ? left : piece.size();
    s.update(piece.data(), n);
    left -= n;
  }
  uint8_t out[kSha256Bytes];
  s.final(out);
  EXPECT_EQ(toHex(out, sizeof(out)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths around the padding boundaries: 55 fits the length in one block, 56..63
// need a second, 64 is exactly one block.
TEST(Sha256, PaddingBoundaries) {
  EXPECT_EQ(sha256Hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256Hex(std::string(63, 'a')),
            "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  EXPECT_EQ(sha256Hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  EXPECT_EQ(sha256Hex(std::string(65, 'a')),
            "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0");
  EXPECT_EQ(sha256Hex(std::string(119, 'a')),
            "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
  EXPECT_EQ(sha256Hex(std::string(120, 'a')),
            "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c");
}

TEST(Sha256, ResetStartsOver) {
  Sha256 s;
  s.update("garbage", 7);
  s.reset();
  s.update("abc", 3);
  uint8_t out[kSha256Bytes];
  s.final(out);
  EXPECT_EQ(toHex(out, sizeof(out)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// RFC 4231 §4. Case 5 (truncated output) is not applicable to a full-length MAC.
TEST(HmacSha256, Rfc4231Case1) {
  EXPECT_EQ(hmacHex(std::vector<uint8_t>(20, 0x0b), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256, Rfc4231Case2KeyShorterThanOutput) {
  EXPECT_EQ(hmacHex({'J', 'e', 'f', 'e'}, "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256, Rfc4231Case3) {
  EXPECT_EQ(hmacHex(std::vector<uint8_t>(20, 0xaa), std::string(50, '\xdd')),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST(HmacSha256, Rfc4231Case4) {
  std::vector<uint8_t> key;
  for (uint8_t b = 1; b <= 25; ++b)
    key.push_back(b);
  EXPECT_EQ(hmacHex(key, std::string(50, '\xcd')),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(HmacSha256, Rfc4231Case6KeyLargerThanBlock) {
  EXPECT_EQ(hmacHex(std::vector<uint8_t>(131, 0xaa),
                    "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256, Rfc4231Case7KeyAndDataLargerThanBlock) {
  EXPECT_EQ(hmacHex(std::vector<uint8_t>(131, 0xaa),
                    "This is a test using a larger than block-size key and a larger than "
                    "block-size data. The key needs to be hashed before being used by the HMAC "
                    "algorithm."),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(HmacSha256, IncrementalEqualsOneShotAtEverySplit) {
  std::vector<uint8_t> msg(200);
  for (size_t i = 0; i < msg.size(); ++i)
    msg[i] = uint8_t(i * 37 + 11);
  const std::vector<uint8_t> key = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  uint8_t expected[kSha256Bytes];
  hmacSha256(key.data(), key.size(), msg.data(), msg.size(), expected);
  for (size_t split = 0; split <= msg.size(); ++split) {
    HmacSha256 mac(key.data(), key.size());
    mac.update(msg.data(), split);
    mac.update(msg.data() + split, msg.size() - split);
    uint8_t got[kSha256Bytes];
    mac.final(got);
    EXPECT_EQ(0, memcmp(got, expected, sizeof(got))) << "split at " << split;
  }
}

TEST(HmacSha256, IncrementalInThreePieces) {
  std::vector<uint8_t> msg(200);
  for (size_t i = 0; i < msg.size(); ++i)
    msg[i] = uint8_t(i ^ 0x5a);
  const std::vector<uint8_t> key(100, 0x42);  // longer than a block: hashed first
  uint8_t expected[kSha256Bytes];
  hmacSha256(key.data(), key.size(), msg.data(), msg.size(), expected);
  for (size_t a = 0; a <= msg.size(); a += 7) {
    for (size_t b = a; b <= msg.size(); b += 13) {
      HmacSha256 mac(key.data(), key.size());
      mac.update(msg.data(), a);
      mac.update(msg.data() + a, b - a);
      mac.update(msg.data() + b, msg.size() - b);
      uint8_t got[kSha256Bytes];
      mac.final(got);
      ASSERT_EQ(0, memcmp(got, expected, sizeof(got))) << "splits at " << a << ", " << b;
    }
  }
}

TEST(HmacSha256, EmptyKeyAndMessage) {
  // Same as Python's hmac.new(b"", b"", sha256).
  EXPECT_EQ(hmacHex({}, ""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(HmacSha256, DifferentKeysGiveDifferentMacs) {
  EXPECT_NE(hmacHex({1}, "message"), hmacHex({2}, "message"));
}

TEST(ConstantTimeEqual, EqualAndUnequal) {
  uint8_t a[64], b[64];
  for (int i = 0; i < 64; ++i)
    a[i] = b[i] = uint8_t(i);
  EXPECT_TRUE(constantTimeEqual(a, b, sizeof(a)));
  EXPECT_TRUE(constantTimeEqual(a, b, 0));
  for (int i = 0; i < 64; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      b[i] ^= uint8_t(1u << bit);
      EXPECT_FALSE(constantTimeEqual(a, b, sizeof(a))) << "byte " << i << " bit " << bit;
      b[i] ^= uint8_t(1u << bit);
    }
  }
  b[63] ^= 1;
  EXPECT_TRUE(constantTimeEqual(a, b, 63));  // the difference lies outside n
}

TEST(RandomBytes, FillsAndDiffers) {
  uint8_t a[32] = {}, b[32] = {};
  ASSERT_EQ(gcclSuccess, randomBytes(a, sizeof(a))) << threadLastError();
  ASSERT_EQ(gcclSuccess, randomBytes(b, sizeof(b))) << threadLastError();
  const uint8_t zero[32] = {};
  EXPECT_NE(0, memcmp(a, zero, sizeof(a)));
  EXPECT_NE(0, memcmp(a, b, sizeof(a)));
}

TEST(RandomBytes, LargeRequestIsFilledCompletely) {
  // getrandom may return short above 256 bytes; the loop must fill the whole buffer.
  std::vector<uint8_t> buf(1 << 20, 0);
  ASSERT_EQ(gcclSuccess, randomBytes(buf.data(), buf.size())) << threadLastError();
  // A zero run of 64 bytes anywhere would mean a part was left unwritten.
  size_t run = 0, longest = 0;
  for (uint8_t v : buf) {
    run = v == 0 ? run + 1 : 0;
    if (run > longest) longest = run;
  }
  EXPECT_LT(longest, 64u);
}

TEST(RandomBytes, ZeroBytesAndNull) {
  EXPECT_EQ(gcclSuccess, randomBytes(nullptr, 0));
  EXPECT_EQ(gcclInvalidArgument, randomBytes(nullptr, 16));
  EXPECT_NE(std::string(threadLastError()).find("null"), std::string::npos) << threadLastError();
}

}  // namespace
}  // namespace gccl

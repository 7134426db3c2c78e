// Reads a fuzzer's input as a stream of small fields. An exhausted input reads
// as zeros, so every target can parse any byte string without length checks
// of its own, and a truncated input still means something.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gccl::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : p_(data), left_(size) {}

  bool empty() const { return left_ == 0; }
  size_t left() const { return left_; }

  uint8_t u8() {
    if (left_ == 0) return 0;
    --left_;
    return *p_++;
  }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(u8()) << (8 * i);
    return v;
  }

  // A size that is usually small: one byte below 0x80, two bytes up to 16 KiB,
  // three up to 1 MiB, and otherwise any 64-bit value. Lets mutations reach
  // both the sizes the transport meets and the absurd ones a hostile peer sends.
  uint64_t size() {
    uint8_t s = u8();
    if (s < 0x80) return s;
    if (s < 0xc0) return static_cast<uint64_t>(s & 0x3f) << 8 | u8();
    if (s < 0xf0) return static_cast<uint64_t>(s & 0x0f) << 16 | u16();
    return u64();
  }

  // Up to `want` bytes taken as they are; *got says how many there were.
  const uint8_t* bytes(size_t want, size_t* got) {
    size_t n = want < left_ ? want : left_;
    const uint8_t* at = p_;
    p_ += n;
    left_ -= n;
    *got = n;
    return at;
  }

 private:
  const uint8_t* p_;
  size_t left_;
};

}  // namespace gccl::fuzz

// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), used to authenticate
// connections with the secret carried in the unique id. Also the two helpers
// that such a handshake needs: a comparison that does not leak where two MACs
// differ, and random bytes from the kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gccl/gccl.h"

namespace gccl {

constexpr size_t kSha256Bytes = 32;
constexpr size_t kSha256BlockBytes = 64;

// Incremental SHA-256: update() any number of times, then final() once.
class Sha256 {
 public:
  Sha256() { reset(); }
  ~Sha256();
  Sha256(const Sha256&) = default;
  Sha256& operator=(const Sha256&) = default;

  void reset();
  void update(const void* data, size_t len);
  // Writes the digest; the object must be reset() before it is used again.
  void final(uint8_t out[kSha256Bytes]);

 private:
  void compress(const uint8_t block[kSha256BlockBytes]);

  uint32_t h_[8];
  uint64_t totalBytes_;
  uint8_t buf_[kSha256BlockBytes];
  size_t bufLen_;
};

void sha256(const void* data, size_t len, uint8_t out[kSha256Bytes]);

// Incremental HMAC-SHA-256, for a MAC over several pieces (e.g. a nonce and a
// header) without copying them into one buffer first.
class HmacSha256 {
 public:
  HmacSha256(const uint8_t* key, size_t keyLen);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  void update(const void* data, size_t len);
  // Writes the MAC; the object cannot be used afterwards.
  void final(uint8_t out[kSha256Bytes]);

 private:
  Sha256 inner_;
  uint8_t outerPad_[kSha256BlockBytes];
};

void hmacSha256(const uint8_t* key, size_t keyLen, const void* msg, size_t msgLen,
                uint8_t out[kSha256Bytes]);

// Compares n bytes in time that depends only on n, so that a peer probing MACs
// learns nothing from how long a rejection takes.
bool constantTimeEqual(const void* a, const void* b, size_t n);

// Fills `out` with n bytes from the kernel's CSPRNG (getrandom(2)).
gcclResult_t randomBytes(void* out, size_t n);

// Overwrites n bytes with zeros in a way the compiler cannot drop as a dead store.
void secureZero(void* p, size_t n);

}  // namespace gccl

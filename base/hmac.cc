#include "base/hmac.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "base/check.h"

namespace gccl {

namespace {

// FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube
// roots of the first 64 primes.
constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// FIPS 180-4 §5.3.3: fractional parts of the square roots of the first 8 primes.
constexpr uint32_t kInitialHash[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

inline uint32_t rotr(uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

// SHA-256 is defined on big-endian words regardless of the host's byte order.
inline uint32_t loadBe32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

inline void storeBe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

constexpr uint8_t kInnerPadByte = 0x36;
constexpr uint8_t kOuterPadByte = 0x5c;

}  // namespace

void secureZero(void* p, size_t n) {
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < n; ++i)
    v[i] = 0;
}

Sha256::~Sha256() {
  // The state may hold a key-derived block (HMAC's padded key).
  secureZero(h_, sizeof(h_));
  secureZero(buf_, sizeof(buf_));
}

void Sha256::reset() {
  memcpy(h_, kInitialHash, sizeof(h_));
  totalBytes_ = 0;
  bufLen_ = 0;
  memset(buf_, 0, sizeof(buf_));
}

void Sha256::compress(const uint8_t block[kSha256BlockBytes]) {
  uint32_t w[64];
  for (int t = 0; t < 16; ++t)
    w[t] = loadBe32(block + 4 * t);
  for (int t = 16; t < 64; ++t) {
    uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3];
  uint32_t e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int t = 0; t < 64; ++t) {
    uint32_t bigSigma1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = h + bigSigma1 + ch + kRoundConstants[t] + w[t];
    uint32_t bigSigma0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = bigSigma0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
  h_[5] += f;
  h_[6] += g;
  h_[7] += h;
  secureZero(w, sizeof(w));
}

void Sha256::update(const void* data, size_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  totalBytes_ += len;
  if (bufLen_ > 0) {
    size_t take = kSha256BlockBytes - bufLen_;
    if (take > len) take = len;
    memcpy(buf_ + bufLen_, p, take);
    bufLen_ += take;
    p += take;
    len -= take;
    if (bufLen_ < kSha256BlockBytes) return;
    compress(buf_);
    bufLen_ = 0;
  }
  // Whole blocks straight from the caller's memory, without a copy.
  while (len >= kSha256BlockBytes) {
    compress(p);
    p += kSha256BlockBytes;
    len -= kSha256BlockBytes;
  }
  if (len > 0) {
    memcpy(buf_, p, len);
    bufLen_ = len;
  }
}

void Sha256::final(uint8_t out[kSha256Bytes]) {
  // FIPS 180-4 §5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, then the message
  // length in bits as a 64-bit big-endian integer.
  uint64_t bitLen = totalBytes_ * 8;
  buf_[bufLen_++] = 0x80;
  if (bufLen_ > kSha256BlockBytes - 8) {
    memset(buf_ + bufLen_, 0, kSha256BlockBytes - bufLen_);
    compress(buf_);
    bufLen_ = 0;
  }
  memset(buf_ + bufLen_, 0, kSha256BlockBytes - 8 - bufLen_);
  storeBe32(buf_ + 56, uint32_t(bitLen >> 32));
  storeBe32(buf_ + 60, uint32_t(bitLen));
  compress(buf_);
  for (int i = 0; i < 8; ++i)
    storeBe32(out + 4 * i, h_[i]);
  bufLen_ = 0;
}

void sha256(const void* data, size_t len, uint8_t out[kSha256Bytes]) {
  Sha256 s;
  s.update(data, len);
  s.final(out);
}

HmacSha256::HmacSha256(const uint8_t* key, size_t keyLen) {
  // RFC 2104 §2: keys longer than a block are replaced by their hash; shorter
  // ones are padded with zeros to a block.
  uint8_t k[kSha256BlockBytes] = {};
  if (keyLen > kSha256BlockBytes) {
    sha256(key, keyLen, k);
  } else if (keyLen > 0) {
    memcpy(k, key, keyLen);
  }
  uint8_t innerPad[kSha256BlockBytes];
  for (size_t i = 0; i < kSha256BlockBytes; ++i) {
    innerPad[i] = k[i] ^ kInnerPadByte;
    outerPad_[i] = k[i] ^ kOuterPadByte;
  }
  inner_.update(innerPad, sizeof(innerPad));
  secureZero(k, sizeof(k));
  secureZero(innerPad, sizeof(innerPad));
}

HmacSha256::~HmacSha256() {
  secureZero(outerPad_, sizeof(outerPad_));
}

void HmacSha256::update(const void* data, size_t len) {
  inner_.update(data, len);
}

void HmacSha256::final(uint8_t out[kSha256Bytes]) {
  uint8_t innerHash[kSha256Bytes];
  inner_.final(innerHash);
  Sha256 outer;
  outer.update(outerPad_, sizeof(outerPad_));
  outer.update(innerHash, sizeof(innerHash));
  outer.final(out);
  secureZero(innerHash, sizeof(innerHash));
}

void hmacSha256(const uint8_t* key, size_t keyLen, const void* msg, size_t msgLen,
                uint8_t out[kSha256Bytes]) {
  HmacSha256 mac(key, keyLen);
  mac.update(msg, msgLen);
  mac.final(out);
}

bool constantTimeEqual(const void* a, const void* b, size_t n) {
  // volatile keeps the compiler from turning the loop into an early-exit memcmp.
  const volatile uint8_t* x = static_cast<const volatile uint8_t*>(a);
  const volatile uint8_t* y = static_cast<const volatile uint8_t*>(b);
  uint8_t diff = 0;
  for (size_t i = 0; i < n; ++i)
    diff |= uint8_t(x[i] ^ y[i]);
  return diff == 0;
}

gcclResult_t randomBytes(void* out, size_t n) {
  GCCL_REQUIRE(out != nullptr || n == 0, gcclInvalidArgument,
               "randomBytes: out is null for n=%zu bytes", n);
  uint8_t* p = static_cast<uint8_t*>(out);
  size_t done = 0;
  while (done < n) {
    // Without GRND_NONBLOCK this waits for the pool to be seeded once at boot,
    // which is the guarantee a secret needs; reads above 256 bytes may be short.
    ssize_t r = getrandom(p + done, n - done, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return setError(gcclSystemError, "getrandom(%zu bytes) failed after %zu bytes: %s (errno %d)",
                      n - done, done, strerror(err), err);
    }
    if (r == 0) {
      return setError(gcclSystemError, "getrandom(%zu bytes) returned 0 bytes after %zu bytes",
                      n - done, done);
    }
    done += size_t(r);
  }
  return gcclSuccess;
}

}  // namespace gccl

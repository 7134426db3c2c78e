#include "transports/ucx/ucx_wire.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "base/hmac.h"
#include "base/le.h"

namespace gccl::ucx {

namespace {
constexpr uint32_t kMagic = 0x58435547u;  // "GUCX"
constexpr uint8_t kVersion = 1;
constexpr uint32_t kBlobMagic = 0x42435547u;     // "GUCB"
constexpr size_t kProcessAt = 17 + kNonceBytes;  // boot id, pid namespace, pid
constexpr size_t kBlobFixedBytes = kProcessAt + 16 + 8 + 4 + 2;
}  // namespace

void encodeHeader(const Header& h, uint8_t out[kHeaderBytes]) {
  memset(out, 0, kHeaderBytes);
  putLe32(out, kMagic);
  out[4] = kVersion;
  out[5] = static_cast<uint8_t>(h.kind);
  putLe64(out + 8, h.tag);
  putLe64(out + 16, h.meta.info);
  putLe64(out + 24, h.meta.count);
}

bool decodeHeader(const void* data, size_t len, Header* out) {
  if (data == nullptr || len != kHeaderBytes) return false;
  const auto* p = static_cast<const uint8_t*>(data);
  if (getLe32(p) != kMagic || p[4] != kVersion) return false;
  if (p[5] < static_cast<uint8_t>(Kind::kHello) || p[5] > static_cast<uint8_t>(Kind::kClose))
    return false;
  out->kind = static_cast<Kind>(p[5]);
  out->tag = getLe64(p + 8);
  out->meta.info = getLe64(p + 16);
  out->meta.count = getLe64(p + 24);
  return true;
}

void encodeHandshake(const Handshake& h, uint8_t out[kHandshakeBytes]) {
  putLe64(out, h.commHash);
  putLe32(out + 8, h.from);
  putLe32(out + 12, h.to);
  memcpy(out + 16, h.mac, 32);
}

bool decodeHandshake(const void* data, size_t len, Handshake* out) {
  if (data == nullptr || len != kHandshakeBytes) return false;
  const auto* p = static_cast<const uint8_t*>(data);
  out->commHash = getLe64(p);
  out->from = getLe32(p + 8);
  out->to = getLe32(p + 12);
  memcpy(out->mac, p + 16, 32);
  return true;
}

void handshakeMac(const uint8_t secret[32], Kind kind, const Handshake& h,
                  const uint8_t receiverNonce[kNonceBytes], const uint8_t senderNonce[kNonceBytes],
                  uint8_t out[32]) {
  HmacSha256 mac(secret, 32);
  mac.update(kind == Kind::kHello ? "gccl-ucx-hello" : "gccl-ucx-welcome",
             kind == Kind::kHello ? 14 : 16);
  uint8_t fields[16];
  putLe64(fields, h.commHash);
  putLe32(fields + 8, h.from);
  putLe32(fields + 12, h.to);
  mac.update(fields, sizeof(fields));
  mac.update(receiverNonce, kNonceBytes);
  mac.update(senderNonce, kNonceBytes);
  mac.final(out);
}

std::string encodeBlob(const Blob& b) {
  std::string out(kBlobFixedBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  putLe32(p, kBlobMagic);
  p[4] = kVersion;
  putLe32(p + 5, b.rank);
  putLe64(p + 9, b.commHash);
  memcpy(p + 17, b.nonce, kNonceBytes);
  memcpy(p + kProcessAt, b.bootId, 16);
  putLe64(p + kProcessAt + 16, b.pidNamespace);
  putLe32(p + kProcessAt + 24, b.pid);
  putLe16(p + kProcessAt + 28, static_cast<uint16_t>(b.address.size()));
  out += b.address;
  return out;
}

bool decodeBlob(const std::string& in, Blob* out) {
  if (in.size() < kBlobFixedBytes) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  if (getLe32(p) != kBlobMagic || p[4] != kVersion) return false;
  size_t addrLen = getLe16(p + kProcessAt + 28);
  if (addrLen == 0 || in.size() != kBlobFixedBytes + addrLen) return false;
  out->rank = getLe32(p + 5);
  out->commHash = getLe64(p + 9);
  memcpy(out->nonce, p + 17, kNonceBytes);
  memcpy(out->bootId, p + kProcessAt, 16);
  out->pidNamespace = getLe64(p + kProcessAt + 16);
  out->pid = getLe32(p + kProcessAt + 24);
  out->address.assign(in, kBlobFixedBytes, addrLen);
  return true;
}

void describeProcess(Blob* b) {
  memset(b->bootId, 0, sizeof(b->bootId));
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char text[64] = {};
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    size_t k = 0;
    for (ssize_t i = 0; i < n && k < 32; ++i) {
      char c = text[i];
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (v < 0) continue;
      b->bootId[k / 2] = static_cast<uint8_t>(b->bootId[k / 2] | (v << (k % 2 == 0 ? 4 : 0)));
      ++k;
    }
    if (k != 32) memset(b->bootId, 0, sizeof(b->bootId));
  }
  struct stat st;
  b->pidNamespace = stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
  b->pid = static_cast<uint32_t>(getpid());
}

bool sameProcessSpace(const Blob& mine, const Blob& theirs) {
  static const uint8_t kZero[16] = {};
  return memcmp(mine.bootId, kZero, 16) != 0 && memcmp(mine.bootId, theirs.bootId, 16) == 0 &&
         mine.pidNamespace != 0 && mine.pidNamespace == theirs.pidNamespace && theirs.pid != 0;
}

}  // namespace gccl::ucx

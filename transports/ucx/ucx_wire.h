// What the ucx transport puts on the wire and in its bootstrap blob.
//
// Every active message carries a 32-byte little-endian header: magic,
// version, kind, and for data the tag and the sender's op signature (meta).
// Handshake messages (HELLO, WELCOME) carry a 48-byte body: the
// communicator's hash, the sender's and the receiver's rank, and an
// HMAC-SHA256 over those, both ranks' blob nonces and a label per kind, keyed
// with the communicator's secret. Control messages (ping, pong, abort,
// goodbye) carry their text (the liveness report, the abort reason) as the
// body.
//
// The blob (at most transport::kMaxAddressBlobBytes): magic, version, the
// rank, the communicator's hash, a fresh 16-byte nonce, the process (the
// kernel's boot id, the pid namespace and the pid: a peer on this host and
// in this pid namespace is watched through a pidfd), and the UCP worker
// address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "transports/transport.h"

namespace gccl::ucx {

enum class Kind : uint8_t {
  kHello = 1,    // proves the secret; the receiver binds the sending endpoint to the rank
  kWelcome = 2,  // proves it again: the sender has bound this rank's endpoint
  kData = 3,
  kPing = 4,
  kPong = 5,   // body: the liveness report
  kAbort = 6,  // body: the reason
  kClose = 7,
};

inline constexpr size_t kHeaderBytes = 32;
inline constexpr size_t kHandshakeBytes = 48;
inline constexpr size_t kNonceBytes = 16;
inline constexpr unsigned kAmId = 0x6c;  // the one active-message id the transport uses

struct Header {
  Kind kind = Kind::kData;
  uint64_t tag = 0;
  transport::MessageMeta meta;
};
void encodeHeader(const Header& h, uint8_t out[kHeaderBytes]);
// False unless `len` bytes hold a header of this version with a known kind.
bool decodeHeader(const void* data, size_t len, Header* out);

struct Handshake {
  uint64_t commHash = 0;
  uint32_t from = 0, to = 0;
  uint8_t mac[32] = {};
};
void encodeHandshake(const Handshake& h, uint8_t out[kHandshakeBytes]);
bool decodeHandshake(const void* data, size_t len, Handshake* out);
// The MAC of a HELLO or WELCOME from `from` to `to`: binds the kind, the
// communicator, both ranks and both nonces (the receiver's first).
void handshakeMac(const uint8_t secret[32], Kind kind, const Handshake& h,
                  const uint8_t receiverNonce[kNonceBytes], const uint8_t senderNonce[kNonceBytes],
                  uint8_t out[32]);

struct Blob {
  uint32_t rank = 0;
  uint64_t commHash = 0;
  uint8_t nonce[kNonceBytes] = {};
  uint8_t bootId[16] = {};
  uint64_t pidNamespace = 0;
  uint32_t pid = 0;
  std::string address;  // the UCP worker address
};
// This process's boot id, pid namespace and pid, into `b`.
void describeProcess(Blob* b);
// Whether a process of blob `b` can be watched from this one by its pid.
bool sameProcessSpace(const Blob& mine, const Blob& theirs);
std::string encodeBlob(const Blob& b);
bool decodeBlob(const std::string& in, Blob* out);

}  // namespace gccl::ucx

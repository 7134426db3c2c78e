// Connection authentication: every TCP connection of a communicator (bootstrap
// and data) proves knowledge of the unique id's secret, in both directions,
// before any frame is accepted.
//
//   acceptor  -> connector  CHALLENGE  magic u32, version u16, kind u16 = 1, nonceA[16]      (24 B)
//   connector -> acceptor   HELLO      magic u32, version u16, kind u16 = 2, commHash u64,
//                                      purpose u32, fromRank i32, toRank i32, channel u32,
//                                      nonceC[16], mac[32]                                    (80
//                                      B)
//   acceptor  -> connector  PROOF      magic u32, version u16, kind u16 = 3, mac[32]          (40
//   B)
//
// HELLO's mac = HMAC-SHA256(secret, "gccl-hello" | nonceA | HELLO bytes 0..47);
// PROOF's mac = HMAC-SHA256(secret, "gccl-proof" | nonceA | HELLO bytes 0..47).
// Fresh nonces on both sides defeat replays. A peer that sends anything else
// is closed and logged; nothing it sent reaches the communicator.
#pragma once

#include <poll.h>

#include <cstdint>

#include "gccl/gccl.h"

namespace gccl::tcp {

struct Credentials {
  uint64_t commHash = 0;
  uint8_t secret[32] = {};
};

// kNetPlugin: a socket of one connection of the NCCL net plugin
// (plugins/nccl-net); fromRank carries that connection's random id and toRank
// the number of sockets it opens, channel this socket's index.
// kRejoin: a socket of a restarted rank's connection to a member of a running
// (fault-tolerant) communicator (TcpTransport::rejoin); channel packs the
// socket's index (bits 0-7), the number of sockets (8-15: control,
// asynchronous lane and data sockets) and the rank's incarnation (16-31),
// see rejoinChannel.
enum class Purpose : uint32_t { kBootstrap = 1, kData = 2, kNetPlugin = 3, kRejoin = 4 };

// A kRejoin hello's channel word.
inline constexpr int kMinRejoinSockets = 3;   // control, asynchronous lane, one data socket
inline constexpr int kMaxRejoinSockets = 18;  // and up to 16 data sockets
inline constexpr uint32_t kMaxRejoinIncarnation = 0xffff;
inline uint32_t rejoinChannel(int index, int count, uint32_t incarnation) {
  return (static_cast<uint32_t>(index) & 0xff) | ((static_cast<uint32_t>(count) & 0xff) << 8) |
         (incarnation << 16);
}
inline int rejoinSocketIndex(uint32_t channel) {
  return static_cast<int>(channel & 0xff);
}
inline int rejoinSocketCount(uint32_t channel) {
  return static_cast<int>((channel >> 8) & 0xff);
}
inline uint32_t rejoinIncarnation(uint32_t channel) {
  return channel >> 16;
}

struct HelloInfo {
  Purpose purpose = Purpose::kData;
  int32_t fromRank = -1;
  int32_t toRank = -1;
  uint32_t channel = 0;  // socket index within a peer connection
};

inline constexpr size_t kChallengeBytes = 24;
inline constexpr size_t kHelloBytes = 80;
inline constexpr size_t kProofBytes = 40;

// Connector side: waits for the connect to finish, then runs the handshake;
// blocks until done or `deadlineMs` (monotonic, see nowMs()).
gcclResult_t clientHandshake(int fd, const Credentials& creds, const HelloInfo& hello,
                             int64_t deadlineMs);

// Connector side, non-blocking, for callers that must never wait (the NCCL
// net plugin): start() takes a socket whose connect may still be in progress
// (startConnect); step() moves as far as the socket allows without waiting
// and is called again when wantEvents() (POLLIN/POLLOUT) are ready, or simply
// later. The bytes on the wire are clientHandshake's.
class ClientHandshake {
 public:
  gcclResult_t start(int fd, const Credentials& creds, const HelloInfo& hello);
  // *complete becomes true once the peer's PROOF verified. An error means
  // the handshake failed (threadLastError() says why).
  gcclResult_t step(bool* complete);
  short wantEvents() const {
    return state_ == State::kConnecting || state_ == State::kHello ? POLLOUT : POLLIN;
  }
  // Whether the peer had accepted the socket (its challenge arrived): a
  // failure after that is a peer closing it, one before is a refused connect.
  bool challenged() const { return state_ != State::kConnecting && state_ != State::kChallenge; }
  int fd() const { return fd_; }

 private:
  enum class State { kConnecting, kChallenge, kHello, kProof, kDone };
  int fd_ = -1;
  Credentials creds_;
  HelloInfo info_;
  State state_ = State::kConnecting;
  uint8_t in_[kChallengeBytes > kProofBytes ? kChallengeBytes : kProofBytes] = {};
  uint8_t hello_[kHelloBytes] = {};
  uint8_t nonceA_[16] = {};
  size_t done_ = 0;  // bytes of the current message read or written
};

// Acceptor side, non-blocking: start() sends the challenge, onReadable()
// consumes HELLO as it arrives. The caller checks info() against what it
// expects, then closes the socket or adopts it.
class ServerHandshake {
 public:
  gcclResult_t start(int fd, const Credentials* creds, int64_t deadlineMs);
  // *complete becomes true once HELLO verified and PROOF was sent. An error
  // means the peer must be rejected (threadLastError() says why).
  gcclResult_t onReadable(bool* complete);
  const HelloInfo& info() const { return info_; }
  int fd() const { return fd_; }
  int64_t deadlineMs() const { return deadlineMs_; }

 private:
  int fd_ = -1;
  const Credentials* creds_ = nullptr;
  int64_t deadlineMs_ = 0;
  uint8_t nonceA_[16] = {};
  uint8_t hello_[kHelloBytes] = {};
  size_t got_ = 0;
  HelloInfo info_;
};

}  // namespace gccl::tcp

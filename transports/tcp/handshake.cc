#include "transports/tcp/handshake.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/check.h"
#include "base/hmac.h"
#include "transports/tcp/frame.h"
#include "transports/tcp/socket.h"

namespace gccl::tcp {

namespace {

enum : uint16_t { kKindChallenge = 1, kKindHello = 2, kKindProof = 3 };
constexpr size_t kHelloSignedBytes = 48;

void computeMac(const Credentials& creds, const char* label, const uint8_t nonceA[16],
                const uint8_t* helloSigned, uint8_t out[32]) {
  HmacSha256 mac(creds.secret, sizeof(creds.secret));
  mac.update(label, strlen(label));
  mac.update(nonceA, 16);
  mac.update(helloSigned, kHelloSignedBytes);
  mac.final(out);
}

void putPreamble(uint8_t* p, uint16_t kind) {
  putLe32(p, kFrameMagic);
  putLe16(p + 4, kWireVersion);
  putLe16(p + 6, kind);
}

gcclResult_t checkPreamble(const uint8_t* p, uint16_t kind, const char* what) {
  GCCL_REQUIRE(getLe32(p) == kFrameMagic, gcclInternalError, "handshake: %s has bad magic 0x%08x",
               what, getLe32(p));
  GCCL_REQUIRE(getLe16(p + 4) == kWireVersion, gcclInternalError,
               "handshake: %s has wire version %u, this build speaks %u", what, getLe16(p + 4),
               kWireVersion);
  GCCL_REQUIRE(getLe16(p + 6) == kind, gcclInternalError, "handshake: %s has kind %u, expected %u",
               what, getLe16(p + 6), kind);
  return gcclSuccess;
}

}  // namespace

gcclResult_t clientHandshake(int fd, const Credentials& creds, const HelloInfo& hello,
                             int64_t deadlineMs) {
  GCCL_CHECK(waitConnected(fd, deadlineMs));
  uint8_t challenge[kChallengeBytes];
  GCCL_CHECK(readAllUntil(fd, challenge, sizeof(challenge), deadlineMs, "reading the challenge"));
  GCCL_CHECK(checkPreamble(challenge, kKindChallenge, "challenge"));
  const uint8_t* nonceA = challenge + 8;

  uint8_t msg[kHelloBytes] = {};
  putPreamble(msg, kKindHello);
  putLe64(msg + 8, creds.commHash);
  putLe32(msg + 16, static_cast<uint32_t>(hello.purpose));
  putLe32(msg + 20, static_cast<uint32_t>(hello.fromRank));
  putLe32(msg + 24, static_cast<uint32_t>(hello.toRank));
  putLe32(msg + 28, hello.channel);
  GCCL_CHECK(randomBytes(msg + 32, 16));
  computeMac(creds, "gccl-hello", nonceA, msg, msg + 48);
  GCCL_CHECK(writeAllUntil(fd, msg, sizeof(msg), deadlineMs, "sending hello"));

  uint8_t proof[kProofBytes];
  gcclResult_t r = readAllUntil(fd, proof, sizeof(proof), deadlineMs, "reading the proof");
  if (r == gcclRemoteError)
    return setError(r,
                    "handshake: the peer closed the connection instead of proving the secret "
                    "(do both sides use the same unique id, or the same GCCL_SECRET?)");
  GCCL_CHECK(r);
  GCCL_CHECK(checkPreamble(proof, kKindProof, "proof"));
  uint8_t expect[32];
  computeMac(creds, "gccl-proof", nonceA, msg, expect);
  GCCL_REQUIRE(constantTimeEqual(expect, proof + 8, 32), gcclRemoteError,
               "handshake: the peer does not know this communicator's secret");
  return gcclSuccess;
}

gcclResult_t ClientHandshake::start(int fd, const Credentials& creds, const HelloInfo& hello) {
  fd_ = fd;
  creds_ = creds;
  info_ = hello;
  state_ = State::kConnecting;
  done_ = 0;
  return gcclSuccess;
}

gcclResult_t ClientHandshake::step(bool* complete) {
  *complete = false;
  for (;;) {
    switch (state_) {
      case State::kConnecting: {
        pollfd p{fd_, POLLOUT, 0};
        if (poll(&p, 1, 0) <= 0) return gcclSuccess;
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return setError(gcclRemoteError, "connect failed: %s", strerror(err));
        state_ = State::kChallenge;
        done_ = 0;
        break;
      }
      case State::kChallenge:
      case State::kProof: {
        size_t want = state_ == State::kChallenge ? kChallengeBytes : kProofBytes;
        while (done_ < want) {
          ssize_t n = recv(fd_, in_ + done_, want - done_, MSG_DONTWAIT);
          if (n > 0) {
            done_ += static_cast<size_t>(n);
            continue;
          }
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return gcclSuccess;
          if (state_ == State::kProof)
            return setError(gcclRemoteError,
                            "handshake: the peer closed the connection instead of proving the "
                            "secret (does the handle come from this peer's listen?)");
          return setError(gcclRemoteError, "handshake: connection lost before the challenge: %s",
                          n == 0 ? "closed by the peer" : strerror(errno));
        }
        if (state_ == State::kChallenge) {
          GCCL_CHECK(checkPreamble(in_, kKindChallenge, "challenge"));
          putPreamble(hello_, kKindHello);
          putLe64(hello_ + 8, creds_.commHash);
          putLe32(hello_ + 16, static_cast<uint32_t>(info_.purpose));
          putLe32(hello_ + 20, static_cast<uint32_t>(info_.fromRank));
          putLe32(hello_ + 24, static_cast<uint32_t>(info_.toRank));
          putLe32(hello_ + 28, info_.channel);
          GCCL_CHECK(randomBytes(hello_ + 32, 16));
          computeMac(creds_, "gccl-hello", in_ + 8, hello_, hello_ + 48);
          // The proof is checked against the challenge's nonce: keep it.
          memcpy(nonceA_, in_ + 8, sizeof(nonceA_));
          state_ = State::kHello;
        } else {
          GCCL_CHECK(checkPreamble(in_, kKindProof, "proof"));
          uint8_t expect[32];
          computeMac(creds_, "gccl-proof", nonceA_, hello_, expect);
          GCCL_REQUIRE(constantTimeEqual(expect, in_ + 8, 32), gcclRemoteError,
                       "handshake: the peer does not know the secret");
          state_ = State::kDone;
        }
        done_ = 0;
        break;
      }
      case State::kHello: {
        while (done_ < kHelloBytes) {
          ssize_t n = send(fd_, hello_ + done_, kHelloBytes - done_, MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n > 0) {
            done_ += static_cast<size_t>(n);
            continue;
          }
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return gcclSuccess;
          return setError(gcclRemoteError, "handshake: sending hello: %s", strerror(errno));
        }
        state_ = State::kProof;
        done_ = 0;
        break;
      }
      case State::kDone:
        *complete = true;
        return gcclSuccess;
    }
  }
}

gcclResult_t ServerHandshake::start(int fd, const Credentials* creds, int64_t deadlineMs) {
  fd_ = fd;
  creds_ = creds;
  deadlineMs_ = deadlineMs;
  GCCL_CHECK(randomBytes(nonceA_, sizeof(nonceA_)));
  uint8_t msg[kChallengeBytes];
  putPreamble(msg, kKindChallenge);
  memcpy(msg + 8, nonceA_, 16);
  // A fresh socket's send buffer is empty: this small write completes at once.
  ssize_t n = send(fd, msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
  GCCL_REQUIRE(n == static_cast<ssize_t>(sizeof(msg)), gcclRemoteError,
               "handshake: could not send the challenge: %s",
               n < 0 ? strerror(errno) : "short write");
  return gcclSuccess;
}

gcclResult_t ServerHandshake::onReadable(bool* complete) {
  *complete = false;
  while (got_ < kHelloBytes) {
    ssize_t n = recv(fd_, hello_ + got_, kHelloBytes - got_, MSG_DONTWAIT);
    if (n > 0) {
      got_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return gcclSuccess;
    return setError(gcclRemoteError, "handshake: connection closed after %zu of %zu hello bytes",
                    got_, kHelloBytes);
  }
  // A well-behaved connector waits for PROOF before sending frames; anything more is an error.
  uint8_t extra;
  ssize_t more = recv(fd_, &extra, 1, MSG_DONTWAIT | MSG_PEEK);
  GCCL_REQUIRE(more <= 0, gcclInternalError, "handshake: unexpected bytes after hello");
  GCCL_CHECK(checkPreamble(hello_, kKindHello, "hello"));
  uint64_t hash = getLe64(hello_ + 8);
  GCCL_REQUIRE(hash == creds_->commHash, gcclInternalError,
               "handshake: hello is for another communicator");
  uint8_t expect[32];
  computeMac(*creds_, "gccl-hello", nonceA_, hello_, expect);
  GCCL_REQUIRE(constantTimeEqual(expect, hello_ + 48, 32), gcclInternalError,
               "handshake: wrong secret (authentication failed)");
  info_.purpose = static_cast<Purpose>(getLe32(hello_ + 16));
  info_.fromRank = static_cast<int32_t>(getLe32(hello_ + 20));
  info_.toRank = static_cast<int32_t>(getLe32(hello_ + 24));
  info_.channel = getLe32(hello_ + 28);

  uint8_t proof[kProofBytes];
  putPreamble(proof, kKindProof);
  computeMac(*creds_, "gccl-proof", nonceA_, hello_, proof + 8);
  ssize_t n = send(fd_, proof, sizeof(proof), MSG_NOSIGNAL | MSG_DONTWAIT);
  GCCL_REQUIRE(n == static_cast<ssize_t>(sizeof(proof)), gcclRemoteError,
               "handshake: could not send the proof: %s", n < 0 ? strerror(errno) : "short write");
  *complete = true;
  return gcclSuccess;
}

}  // namespace gccl::tcp

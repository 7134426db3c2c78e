// The connection handshake (transports/tcp/handshake.h) against a peer that
// sends arbitrary bytes, on either side, over a local socket pair.
//
// Server side: ServerHandshake is driven the way the engine drives a stray
// connection (onReadable whenever poll says the socket is readable) while the
// peer's bytes arrive in fuzzer-chosen chunks. Client side: clientHandshake
// reads a fuzzer-made challenge and proof. Nothing waits on a deadline: the
// peer's bytes are written before they are needed, and the peer's end is shut
// once they are out, so a short stream ends in EOF.
//
// A random nonce goes into every MAC, so a fuzzer cannot forge one; with
// kHsSign the harness computes the MAC over whatever bytes the fuzzer made,
// which lets inputs reach the code after the MAC check. The checks: a side
// completes only with a valid MAC, what it reports matches the bytes it
// accepted, and what it sends proves the secret.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "base/check.h"
#include "base/hmac.h"
#include "fuzz/formats.h"
#include "fuzz/fuzz_input.h"
#include "transports/tcp/frame.h"
#include "transports/tcp/handshake.h"
#include "transports/tcp/socket.h"

namespace gccl::fuzz {
namespace {

using tcp::kChallengeBytes;
using tcp::kHelloBytes;
using tcp::kProofBytes;

constexpr uint16_t kKindChallenge = 1, kKindHello = 2, kKindProof = 3;
constexpr size_t kHelloSignedBytes = 48;
// Far enough away never to matter: no input may spend its time waiting.
constexpr int64_t kSafetyDeadlineMs = 10000;

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "fuzz_handshake: %s\n", what);
  abort();
}

tcp::Credentials credentials() {
  tcp::Credentials c;
  c.commHash = kCommHash;
  for (size_t i = 0; i < sizeof(c.secret); ++i)
    c.secret[i] = static_cast<uint8_t>(kSecretSeed + i);
  return c;
}

void mac(const tcp::Credentials& c, const char* label, const uint8_t* nonceA,
         const uint8_t* helloSigned, uint8_t* out) {
  HmacSha256 h(c.secret, sizeof(c.secret));
  h.update(label, strlen(label));
  h.update(nonceA, 16);
  h.update(helloSigned, kHelloSignedBytes);
  h.final(out);
}

bool preambleIs(const uint8_t* p, uint16_t kind) {
  return tcp::getLe32(p) == tcp::kFrameMagic && tcp::getLe16(p + 4) == tcp::kWireVersion &&
         tcp::getLe16(p + 6) == kind;
}

// The peer's bytes and how they are cut, as formats.h describes.
struct Script {
  uint8_t flags = 0;
  std::vector<size_t> chunks;
  std::vector<uint8_t> stream;

  explicit Script(FuzzInput in) {
    flags = in.u8();
    int n = in.u8() % 8;
    for (int i = 0; i < n; ++i)
      chunks.push_back(in.u8());
    size_t got = 0;
    const uint8_t* rest = in.bytes(in.left(), &got);
    stream.assign(rest, rest + got);
  }
  bool has(uint8_t flag) const { return (flags & flag) != 0; }
};

struct SocketPair {
  int side = -1;  // the end under test
  int peer = -1;  // the end the harness plays
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
      fail("socketpair failed");
    side = fds[0];
    peer = fds[1];
  }
  ~SocketPair() {
    close(side);
    close(peer);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
};

// libFuzzer's timer signals may interrupt any of these calls; they retry, so
// that what an input does never depends on when a signal came.
bool readable(int fd) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

ssize_t recvNow(int fd, void* out, size_t n) {
  for (;;) {
    ssize_t r = recv(fd, out, n, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

void sendSome(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    p += r;
    n -= static_cast<size_t>(r);
  }
}

// ---- server side ------------------------------------------------------------

class ServerRun {
 public:
  explicit ServerRun(const Script& s) : s_(s) {}

  void run() {
    if (hs_.start(sp_.side, &creds_, nowMs() + kSafetyDeadlineMs) != gcclSuccess)
      fail("the challenge could not be sent on a fresh socket");
    uint8_t challenge[kChallengeBytes];
    if (recvNow(sp_.peer, challenge, sizeof(challenge)) !=
            static_cast<ssize_t>(sizeof(challenge)) ||
        !preambleIs(challenge, kKindChallenge))
      fail("the server's challenge is malformed");
    memcpy(nonceA_, challenge + 8, 16);

    std::vector<uint8_t> stream = s_.stream;
    if (s_.has(kHsSign) && stream.size() >= kHelloSignedBytes) {
      uint8_t m[32];
      mac(creds_, "gccl-hello", nonceA_, stream.data(), m);
      size_t n = std::min<size_t>(32, stream.size() - kHelloSignedBytes);
      memcpy(stream.data() + kHelloSignedBytes, m, n);
    }

    size_t at = 0;
    for (size_t i = 0; i <= s_.chunks.size() && !finished_; ++i) {
      size_t n =
          i < s_.chunks.size() ? std::min(s_.chunks[i], stream.size() - at) : stream.size() - at;
      sendSome(sp_.peer, stream.data() + at, n);
      at += n;
      drive();
    }
    if (!finished_ && s_.has(kHsHangUp)) {
      shutdown(sp_.peer, SHUT_WR);
      drive();
    }
    if (complete_) checkAccepted(stream);
  }

 private:
  // The engine's loop for a stray connection: onReadable while readable.
  void drive() {
    for (int rounds = 0; !finished_ && readable(sp_.side); ++rounds) {
      if (rounds == 64) fail("onReadable keeps the socket readable without finishing");
      clearThreadLastError();
      gcclResult_t r = hs_.onReadable(&complete_);
      if (r != gcclSuccess) {
        if (complete_) fail("a rejected hello reported completion");
        if (threadLastError()[0] == '\0') fail("a rejected hello left no reason");
        finished_ = true;
      } else if (complete_) {
        finished_ = true;
      }
    }
  }

  void checkAccepted(const std::vector<uint8_t>& stream) {
    if (!s_.has(kHsSign)) fail("a hello without a valid MAC was accepted");
    if (stream.size() < kHelloBytes) fail("a short hello was accepted");
    const uint8_t* hello = stream.data();
    if (!preambleIs(hello, kKindHello) || tcp::getLe64(hello + 8) != kCommHash)
      fail("a hello for another communicator or protocol was accepted");
    const tcp::HelloInfo& info = hs_.info();
    if (static_cast<uint32_t>(info.purpose) != tcp::getLe32(hello + 16) ||
        static_cast<uint32_t>(info.fromRank) != tcp::getLe32(hello + 20) ||
        static_cast<uint32_t>(info.toRank) != tcp::getLe32(hello + 24) ||
        info.channel != tcp::getLe32(hello + 28))
      fail("info() differs from the hello that was accepted");
    uint8_t proof[kProofBytes];
    if (recvNow(sp_.peer, proof, sizeof(proof)) != static_cast<ssize_t>(sizeof(proof)))
      fail("a completed handshake sent no proof");
    uint8_t expect[32];
    mac(creds_, "gccl-proof", nonceA_, hello, expect);
    if (!preambleIs(proof, kKindProof) || memcmp(proof + 8, expect, 32) != 0)
      fail("the server's proof does not prove the secret");
  }

  const Script& s_;
  tcp::Credentials creds_ = credentials();
  SocketPair sp_;
  tcp::ServerHandshake hs_;
  uint8_t nonceA_[16] = {};
  bool complete_ = false;
  bool finished_ = false;
};

// ---- client side ------------------------------------------------------------

class ClientRun {
 public:
  explicit ClientRun(const Script& s) : s_(s) {}

  void run() {
    tcp::HelloInfo hello;
    hello.purpose = tcp::Purpose::kData;
    hello.fromRank = 3;
    hello.toRank = 1;
    hello.channel = 2;
    if (!s_.has(kHsSign)) {
      // Everything up front, then EOF: the client never waits.
      sendSome(sp_.peer, s_.stream.data(), s_.stream.size());
      shutdown(sp_.peer, SHUT_WR);
      clearThreadLastError();
      gcclResult_t r = tcp::clientHandshake(sp_.side, creds_, hello, deadline());
      if (r == gcclSuccess) fail("the client accepted a proof the harness did not sign");
      if (threadLastError()[0] == '\0') fail("a failed client handshake left no reason");
      return;
    }
    runSigned(hello);
  }

 private:
  static int64_t deadline() { return nowMs() + kSafetyDeadlineMs; }

  // The proof depends on the client's own nonce, so the client runs in a
  // thread while this one reads its hello and answers it.
  void runSigned(const tcp::HelloInfo& hello) {
    gcclResult_t result = gcclInternalError;
    std::thread client([&] {
      result = tcp::clientHandshake(sp_.side, creds_, hello, deadline());
      shutdown(sp_.side, SHUT_WR);  // tells the harness it is done, whatever happened
    });
    std::vector<uint8_t> stream = s_.stream;
    size_t challengeBytes = std::min(stream.size(), kChallengeBytes);
    sendSome(sp_.peer, stream.data(), challengeBytes);
    if (challengeBytes < kChallengeBytes) shutdown(sp_.peer, SHUT_WR);

    uint8_t sent[kHelloBytes];
    size_t got = readHello(sent);
    if (got == kHelloBytes && stream.size() > kChallengeBytes + 8) {
      uint8_t m[32];
      mac(creds_, "gccl-proof", stream.data() + 8, sent, m);
      size_t n = std::min<size_t>(32, stream.size() - kChallengeBytes - 8);
      memcpy(stream.data() + kChallengeBytes + 8, m, n);
    }
    if (stream.size() > kChallengeBytes)
      sendSome(sp_.peer, stream.data() + kChallengeBytes, stream.size() - kChallengeBytes);
    shutdown(sp_.peer, SHUT_WR);
    client.join();

    if (got == kHelloBytes) checkHello(stream.data() + 8, sent);
    if (result != gcclSuccess) return;
    if (got != kHelloBytes || stream.size() < kChallengeBytes + kProofBytes)
      fail("the client completed without a full exchange");
    if (!preambleIs(stream.data(), kKindChallenge) ||
        !preambleIs(stream.data() + kChallengeBytes, kKindProof))
      fail("the client completed on a malformed challenge or proof");
  }

  // Reads the client's hello until it is whole or the client has finished.
  size_t readHello(uint8_t* out) {
    size_t got = 0;
    int64_t deadline = nowMs() + kSafetyDeadlineMs;
    while (got < kHelloBytes) {
      int64_t left = deadline - nowMs();
      if (left <= 0) fail("the client hangs");
      pollfd p{sp_.peer, POLLIN, 0};
      // libFuzzer's timer signals interrupt the wait; only the deadline counts.
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      ssize_t n = recvNow(sp_.peer, out + got, kHelloBytes - got);
      if (n == 0) break;
      if (n > 0) got += static_cast<size_t>(n);
    }
    return got;
  }

  void checkHello(const uint8_t* nonceA, const uint8_t* sent) {
    if (!preambleIs(sent, kKindHello) || tcp::getLe64(sent + 8) != kCommHash ||
        tcp::getLe32(sent + 20) != 3 || tcp::getLe32(sent + 24) != 1 ||
        tcp::getLe32(sent + 28) != 2)
      fail("the client's hello does not say what it was given");
    uint8_t expect[32];
    mac(creds_, "gccl-hello", nonceA, sent, expect);
    if (memcmp(sent + kHelloSignedBytes, expect, 32) != 0)
      fail("the client's hello does not prove the secret");
  }

  const Script& s_;
  tcp::Credentials creds_ = credentials();
  SocketPair sp_;
};

}  // namespace
}  // namespace gccl::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gccl::fuzz::Script script(gccl::fuzz::FuzzInput(data, size));
  if (script.has(gccl::fuzz::kHsClientSide))
    gccl::fuzz::ClientRun(script).run();
  else
    gccl::fuzz::ServerRun(script).run();
  return 0;
}

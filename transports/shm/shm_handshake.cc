// The handshake of shm_setup.h: its messages, their MACs, one SEQPACKET
// message at a time with deadlines, the connector's side and the acceptor's.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "base/check.h"
#include "base/hmac.h"
#include "transports/shm/shm_setup.h"

namespace gccl::shm {

namespace {

constexpr uint32_t kMsgMagic = 0x4d485347u;  // bytes 'G','S','H','M'
constexpr uint16_t kMsgVersion = 1;
enum : uint16_t { kChallenge = 1, kHello = 2, kProof = 3, kReady = 4 };

struct Preamble {
  uint32_t magic;
  uint16_t version;
  uint16_t kind;
};
struct ChallengeMsg {
  Preamble p;
  uint8_t nonce[16];
};
struct HelloMsg {
  Preamble p;
  uint64_t commHash;
  int32_t fromRank;
  int32_t toRank;
  uint8_t nonce[16];
  uint64_t cookieAddr;
  uint8_t cookie[16];
  uint8_t mac[32];
};
struct ProofMsg {
  Preamble p;
  uint32_t readsYou;  // the acceptor can read the connector's memory
  uint32_t reserved;
  uint64_t cookieAddr;
  uint8_t cookie[16];
  uint64_t regionBytes;
  uint64_t laneBytes[kLanes];
  uint8_t mac[32];
};
struct ReadyMsg {
  Preamble p;
  uint32_t readsYou;  // the connector can read the acceptor's memory
  uint32_t reserved;
};
static_assert(sizeof(HelloMsg) == 96 && offsetof(HelloMsg, mac) == 64, "HELLO has no padding");
static_assert(sizeof(ProofMsg) == 96 && offsetof(ProofMsg, mac) == 64, "PROOF has no padding");

Preamble preamble(uint16_t kind) {
  return Preamble{kMsgMagic, kMsgVersion, kind};
}

gcclResult_t checkPreamble(const Preamble& p, uint16_t kind, int peer) {
  GCCL_REQUIRE(p.magic == kMsgMagic && p.version == kMsgVersion && p.kind == kind, gcclRemoteError,
               "shared-memory handshake with rank %d: expected message kind %u (version %u), got "
               "magic 0x%08x kind %u version %u",
               peer, kind, kMsgVersion, p.magic, p.kind, p.version);
  return gcclSuccess;
}

void helloMac(const uint8_t* secret, const uint8_t nonceA[16], const HelloMsg& h, uint8_t out[32]) {
  HmacSha256 mac(secret, 32);
  mac.update("gccl-shm-hello", 14);
  mac.update(nonceA, 16);
  mac.update(&h, offsetof(HelloMsg, mac));
  mac.final(out);
}

void proofMac(const uint8_t* secret, const uint8_t nonceA[16], const HelloMsg& h, const ProofMsg& p,
              uint8_t out[32]) {
  HmacSha256 mac(secret, 32);
  mac.update("gccl-shm-proof", 14);
  mac.update(nonceA, 16);
  mac.update(&h, sizeof(h));
  mac.update(&p, offsetof(ProofMsg, mac));
  mac.final(out);
}

// Waits for `events` on fd, in slices, until the deadline.
gcclResult_t waitFd(int fd, short events, int64_t deadlineMs, int peer, const char* what) {
  for (;;) {
    int64_t left = deadlineMs - monotonicMs();
    if (left <= 0)
      return setError(gcclTimeout, "shared-memory handshake with rank %d: timed out %s", peer,
                      what);
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left > 1000 ? 1000 : left));
    if (n > 0) return gcclSuccess;
    if (n < 0 && errno != EINTR) return setError(gcclSystemError, "poll: %s", strerror(errno));
  }
}

void closeAll(const int* fds, int n) {
  for (int i = 0; i < n; ++i)
    if (fds[i] >= 0) close(fds[i]);
}

// One SEQPACKET message, non-blocking. *len = 0 and success when none is
// waiting; received descriptors land in fds (up to maxFds; any other number
// of them is an error, and none is kept then).
gcclResult_t recvMessage(int fd, void* buf, size_t cap, size_t* len, int* fds, int maxFds,
                         int* nfds, int peer) {
  *len = 0;
  if (nfds != nullptr) *nfds = 0;
  iovec iov{buf, cap};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (maxFds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return gcclSuccess;
  int got = 0;
  int received[4] = {-1, -1, -1, -1};
  if (n > 0 && maxFds > 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int f;
        memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (got < 4)
          received[got++] = f;
        else
          close(f);
      }
    }
  }
  if (n == 0)
    return setError(gcclRemoteError,
                    "shared-memory handshake with rank %d: the peer closed the connection", peer);
  if (n < 0)
    return setError(gcclRemoteError, "shared-memory handshake with rank %d: recvmsg: %s", peer,
                    strerror(errno));
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || got > maxFds ||
      (maxFds > 0 && got != maxFds)) {
    closeAll(received, got);
    return setError(gcclRemoteError,
                    "shared-memory handshake with rank %d: a message of %zd bytes with %d "
                    "descriptors does not fit the protocol",
                    peer, n, got);
  }
  for (int i = 0; i < got; ++i)
    fds[i] = received[i];
  if (nfds != nullptr) *nfds = got;
  *len = static_cast<size_t>(n);
  return gcclSuccess;
}

gcclResult_t recvExact(int fd, void* buf, size_t want, int* fds, int maxFds, int64_t deadlineMs,
                       int peer, const char* what) {
  for (;;) {
    size_t len = 0;
    int nfds = 0;
    // One byte of room more than wanted, so that a longer message shows as one.
    uint8_t tmp[256];
    GCCL_CHECK(recvMessage(fd, tmp, want + 1, &len, fds, maxFds, &nfds, peer));
    if (len > 0) {
      if (len != want) {
        closeAll(fds, nfds);
        return setError(gcclRemoteError,
                        "shared-memory handshake with rank %d: %s has %zu bytes, expected %zu",
                        peer, what, len, want);
      }
      memcpy(buf, tmp, want);
      return gcclSuccess;
    }
    GCCL_CHECK(waitFd(fd, POLLIN, deadlineMs, peer, what));
  }
}

gcclResult_t sendMessage(int fd, const void* buf, size_t len, const int* fds, int nfds, int peer) {
  iovec iov{const_cast<void*>(buf), len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<size_t>(nfds));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<size_t>(nfds));
    memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<size_t>(nfds));
  }
  // The socket is fresh and the messages tiny: they fit its buffer at once.
  ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  GCCL_REQUIRE(n == static_cast<ssize_t>(len), gcclRemoteError,
               "shared-memory handshake with rank %d: sendmsg: %s", peer,
               n < 0 ? strerror(errno) : "short write");
  return gcclSuccess;
}

// The peer runs as this process's effective user; *pid is its process id
// as this pid namespace sees it (0 when it cannot).
gcclResult_t checkPeerUser(int fd, int peer, pid_t* pid) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return setError(gcclSystemError, "SO_PEERCRED: %s", strerror(errno));
  if (cred.uid != geteuid() && peer >= 0)
    return setError(gcclRemoteError,
                    "rank %d's shared-memory socket belongs to uid %u, this process runs as uid %u",
                    peer, static_cast<unsigned>(cred.uid), static_cast<unsigned>(geteuid()));
  GCCL_REQUIRE(cred.uid == geteuid(), gcclRemoteError,
               "a process of uid %u (pid %d) connected to the shared-memory socket of this "
               "process (uid %u)",
               static_cast<unsigned>(cred.uid), static_cast<int>(cred.pid),
               static_cast<unsigned>(geteuid()));
  *pid = cred.pid;
  return gcclSuccess;
}

}  // namespace

// ---- connector ----------------------------------------------------------------------

gcclResult_t connectToPeer(const HandshakeConfig& cfg, int peer, const std::string& name,
                           int64_t deadlineMs, Endpoint* out) {
  Endpoint ep;
  ep.peer = peer;
  ep.side = 1;
  ep.sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ep.sock < 0) return setError(gcclSystemError, "unix socket: %s", strerror(errno));
  struct Guard {
    Endpoint* e;
    ~Guard() {
      if (e != nullptr) releaseEndpoint(e);
    }
  } guard{&ep};
  sockaddr_un sa;
  socklen_t salen = abstractAddress(name, &sa);
  for (;;) {
    if (::connect(ep.sock, reinterpret_cast<sockaddr*>(&sa), salen) == 0) break;
    // A full backlog: the peer is busy accepting others; try again shortly.
    if (errno == EAGAIN || errno == EINTR) {
      if (monotonicMs() >= deadlineMs)
        return setError(gcclTimeout, "timed out connecting to rank %d's shared-memory socket",
                        peer);
      usleep(1000);
      continue;
    }
    return setError(gcclRemoteError,
                    "cannot connect to rank %d's shared-memory socket @%s: %s (did it exit?)", peer,
                    name.c_str(), strerror(errno));
  }
  GCCL_CHECK(checkPeerUser(ep.sock, peer, &ep.peerPid));
  ChallengeMsg challenge;
  GCCL_CHECK(recvExact(ep.sock, &challenge, sizeof(challenge), nullptr, 0, deadlineMs, peer,
                       "waiting for the challenge"));
  GCCL_CHECK(checkPreamble(challenge.p, kChallenge, peer));

  HelloMsg hello;
  memset(&hello, 0, sizeof(hello));
  hello.p = preamble(kHello);
  hello.commHash = cfg.commHash;
  hello.fromRank = cfg.rank;
  hello.toRank = peer;
  // The acceptor proves that it can read this process's memory by reading
  // these random bytes (they live on this stack until the handshake is over).
  uint8_t cookie[16];
  GCCL_CHECK(randomBytes(hello.nonce, sizeof(hello.nonce)));
  GCCL_CHECK(randomBytes(cookie, sizeof(cookie)));
  hello.cookieAddr = reinterpret_cast<uintptr_t>(cookie);
  memcpy(hello.cookie, cookie, sizeof(cookie));
  helloMac(cfg.secret, challenge.nonce, hello, hello.mac);
  GCCL_CHECK(sendMessage(ep.sock, &hello, sizeof(hello), nullptr, 0, peer));

  ProofMsg proof;
  int fds[3] = {-1, -1, -1};
  gcclResult_t r = recvExact(ep.sock, &proof, sizeof(proof), fds, 3, deadlineMs, peer,
                             "waiting for the proof of the secret");
  if (r == gcclRemoteError)
    return setError(r, "%s (do both sides use the same unique id, or the same GCCL_SECRET?)",
                    threadLastError());
  GCCL_CHECK(r);
  ep.myBell = fds[2];
  ep.peerBell = fds[1];
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } memfd{fds[0]};
  GCCL_CHECK(checkPreamble(proof.p, kProof, peer));
  uint8_t expect[32];
  proofMac(cfg.secret, challenge.nonce, hello, proof, expect);
  GCCL_REQUIRE(constantTimeEqual(expect, proof.mac, 32), gcclRemoteError,
               "shared-memory handshake with rank %d: the peer does not know this communicator's "
               "secret",
               peer);
  GCCL_CHECK(attachRegion(memfd.fd, proof.laneBytes, proof.regionBytes, peer, &ep.base));
  ep.bytes = makeLayout(proof.laneBytes[kDataLane], proof.laneBytes[kAsyncLane]).totalBytes;
  for (int l = 0; l < kLanes; ++l)
    ep.laneBytes[l] = proof.laneBytes[l];
  ep.peerReadsMe = proof.readsYou != 0;
  ep.iReadPeer = cfg.cma && probeSingleCopy(ep.peerPid, proof.cookieAddr, proof.cookie, 16);

  ReadyMsg ready;
  memset(&ready, 0, sizeof(ready));
  ready.p = preamble(kReady);
  ready.readsYou = ep.iReadPeer ? 1 : 0;
  GCCL_CHECK(sendMessage(ep.sock, &ready, sizeof(ready), nullptr, 0, peer));
  *out = ep;
  guard.e = nullptr;
  return gcclSuccess;
}

// ---- acceptor -----------------------------------------------------------------------

AcceptedPeer::~AcceptedPeer() {
  if (fd_ >= 0) close(fd_);
  releaseEndpoint(&ep_);
}

gcclResult_t AcceptedPeer::start() {
  GCCL_CHECK(checkPeerUser(fd_, -1, &pid_));
  ChallengeMsg c;
  memset(&c, 0, sizeof(c));
  c.p = preamble(kChallenge);
  GCCL_CHECK(randomBytes(nonceA_, sizeof(nonceA_)));
  GCCL_CHECK(randomBytes(cookie_, sizeof(cookie_)));
  memcpy(c.nonce, nonceA_, sizeof(nonceA_));
  GCCL_CHECK(sendMessage(fd_, &c, sizeof(c), nullptr, 0, -1));
  stage_ = 1;
  return gcclSuccess;
}

gcclResult_t AcceptedPeer::onReadable(const std::function<bool(int)>& expected, bool* done) {
  *done = false;
  int peer = stage_ == 2 ? ep_.peer : -1;
  for (;;) {
    uint8_t buf[sizeof(HelloMsg) + 1];
    size_t len = 0;
    GCCL_CHECK(recvMessage(fd_, buf, sizeof(buf), &len, nullptr, 0, nullptr, peer));
    if (len == 0) return gcclSuccess;
    if (stage_ == 1) {
      GCCL_REQUIRE(len == sizeof(HelloMsg), gcclRemoteError,
                   "shared-memory handshake: a hello of %zu bytes (expected %zu)", len,
                   sizeof(HelloMsg));
      GCCL_CHECK(onHello(buf, expected));
      continue;
    }
    ReadyMsg ready;
    GCCL_REQUIRE(len == sizeof(ready), gcclRemoteError,
                 "shared-memory handshake with rank %d: a ready message of %zu bytes", peer, len);
    memcpy(&ready, buf, sizeof(ready));
    GCCL_CHECK(checkPreamble(ready.p, kReady, peer));
    ep_.peerReadsMe = ready.readsYou != 0;
    *done = true;
    return gcclSuccess;
  }
}

gcclResult_t AcceptedPeer::onHello(const uint8_t* raw, const std::function<bool(int)>& expected) {
  HelloMsg hello;
  memcpy(&hello, raw, sizeof(hello));
  GCCL_CHECK(checkPreamble(hello.p, kHello, -1));
  GCCL_REQUIRE(hello.commHash == cfg_->commHash, gcclRemoteError,
               "shared-memory handshake: a hello for another communicator");
  uint8_t mac[32];
  helloMac(cfg_->secret, nonceA_, hello, mac);
  GCCL_REQUIRE(constantTimeEqual(mac, hello.mac, 32), gcclRemoteError,
               "shared-memory handshake: wrong secret (authentication failed)");
  GCCL_REQUIRE(hello.toRank == cfg_->rank && expected(hello.fromRank), gcclRemoteError,
               "shared-memory handshake: rank %d connected to rank %d, which does not expect it",
               hello.fromRank, hello.toRank);
  int peer = hello.fromRank;
  ep_.peer = peer;
  ep_.side = 0;
  ep_.peerPid = pid_;
  RegionLayout layout = makeLayout(cfg_->dataLaneBytes, cfg_->asyncLaneBytes);
  int memfd = -1;
  GCCL_CHECK(createRegion(layout, &memfd, &ep_.base));
  ep_.bytes = layout.totalBytes;
  for (int l = 0; l < kLanes; ++l)
    ep_.laneBytes[l] = layout.laneBytes[l];
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } memfdCloser{memfd};
  int bell0 = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int bell1 = bell0 < 0 ? -1 : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ep_.myBell = bell0;
  ep_.peerBell = bell1;
  if (bell1 < 0) return setError(gcclSystemError, "eventfd: %s", strerror(errno));
  ep_.iReadPeer = cfg_->cma && probeSingleCopy(pid_, hello.cookieAddr, hello.cookie, 16);

  ProofMsg proof;
  memset(&proof, 0, sizeof(proof));
  proof.p = preamble(kProof);
  proof.readsYou = ep_.iReadPeer ? 1 : 0;
  proof.cookieAddr = reinterpret_cast<uintptr_t>(cookie_);
  memcpy(proof.cookie, cookie_, sizeof(cookie_));
  proof.regionBytes = layout.totalBytes;
  for (int l = 0; l < kLanes; ++l)
    proof.laneBytes[l] = layout.laneBytes[l];
  proofMac(cfg_->secret, nonceA_, hello, proof, proof.mac);
  int fds[3] = {memfd, bell0, bell1};
  GCCL_CHECK(sendMessage(fd_, &proof, sizeof(proof), fds, 3, peer));
  stage_ = 2;
  return gcclSuccess;
}

Endpoint AcceptedPeer::take() {
  Endpoint e = ep_;
  e.sock = fd_;
  fd_ = -1;
  ep_ = Endpoint();
  return e;
}

}  // namespace gccl::shm

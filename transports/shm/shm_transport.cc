#include "transports/shm/shm_transport.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "base/check.h"
#include "base/hmac.h"
#include "base/log.h"
#include "base/param.h"

namespace gccl::shm {

namespace {

constexpr size_t kMinRingBytes = 64 << 10;
constexpr size_t kMaxRingBytes = size_t{1} << 30;

size_t ringSize(uint64_t want) {
  size_t size = kMinRingBytes;
  while (size < want && size < kMaxRingBytes)
    size <<= 1;
  return size;
}

ShmTuning normalized(ShmTuning t) {
  t.ringBytes = ringSize(t.ringBytes);
  t.asyncRingBytes = ringSize(t.asyncRingBytes);
  if (t.cmaMinBytes == 0) t.cmaMinBytes = 1;
  return t;
}

std::string rankList(const std::set<int>& ranks) {
  std::string s;
  for (int r : ranks)
    s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

}  // namespace

ShmTuning ShmTuning::fromParams() {
  ShmTuning t;
  int64_t ring = param::ShmRingBytes();
  t.ringBytes = ringSize(ring > 0 ? static_cast<uint64_t>(ring) : 0);
  if (static_cast<int64_t>(t.ringBytes) != ring)
    GCCL_WARN(kLogEnv,
              "GCCL_SHM_RING_BYTES=%lld is not a power of two from 64 KiB to 1 GiB; using %zu",
              static_cast<long long>(ring), t.ringBytes);
  t.asyncRingBytes = std::max(kMinRingBytes, t.ringBytes / 4);
  int64_t cmaMin = param::ShmCmaMinBytes();
  t.cmaMinBytes = cmaMin > 0 ? static_cast<size_t>(cmaMin) : 1;
  t.cma = param::ShmCma() != 0;
  return t;
}

ShmTransport::ShmTransport(const transport::TransportContext& ctx, const ShmTuning& tuning)
    : ctx_(ctx), tuning_(normalized(tuning)) {}

ShmTransport::~ShmTransport() {
  if (listenFd_ >= 0) close(listenFd_);
}

bool ShmTransport::viable(std::string* why) {
  HostIdentity host;
  if (readHostIdentity(&host) != gcclSuccess) {
    *why = threadLastError();
    return false;
  }
  int fd = memfd_create("gccl-shm-probe", MFD_CLOEXEC);
  if (fd < 0) {
    *why = std::string("memfd_create: ") + strerror(errno);
    return false;
  }
  close(fd);
  return true;
}

gcclResult_t ShmTransport::listen(std::string* blob) {
  if (listenFd_ >= 0) close(listenFd_);
  listenFd_ = -1;
  self_ = Address();
  GCCL_CHECK(readHostIdentity(&self_.host));
  self_.commHash = ctx_.commHash;
  self_.rank = ctx_.rank;
  self_.pid = getpid();
  GCCL_CHECK(randomBytes(self_.nonce, sizeof(self_.nonce)));
  GCCL_CHECK(listenAbstract(socketName(self_), &listenFd_));
  *blob = encodeAddress(self_);
  return gcclSuccess;
}

bool ShmTransport::canReach(const std::string& mine, const std::string& theirs) const {
  Address a, b;
  return decodeAddress(mine, &a) && decodeAddress(theirs, &b) && sameHost(a, b);
}

HandshakeConfig ShmTransport::handshakeConfig() const {
  HandshakeConfig cfg;
  cfg.rank = ctx_.rank;
  cfg.commHash = ctx_.commHash;
  cfg.secret = ctx_.secret;
  cfg.cma = tuning_.cma;
  cfg.dataLaneBytes = tuning_.ringBytes;
  cfg.asyncLaneBytes = tuning_.asyncRingBytes;
  return cfg;
}

gcclResult_t ShmTransport::connect(const std::vector<int>& peers,
                                   const std::vector<std::string>& blobs, int64_t deadlineMs,
                                   std::vector<std::unique_ptr<transport::Connection>>* out) {
  GCCL_REQUIRE(listenFd_ >= 0, gcclInternalError, "the shm transport connects before it listened");
  if (out->size() < static_cast<size_t>(ctx_.nranks)) out->resize(static_cast<size_t>(ctx_.nranks));
  std::vector<int> lower, higher;
  std::vector<Address> addrs(blobs.size());
  for (int p : peers) {
    GCCL_REQUIRE(
        p >= 0 && p < ctx_.nranks && p != ctx_.rank && static_cast<size_t>(p) < blobs.size(),
        gcclInternalError, "rank %d cannot be a shared-memory peer of rank %d", p, ctx_.rank);
    Address& a = addrs[static_cast<size_t>(p)];
    GCCL_REQUIRE(decodeAddress(blobs[static_cast<size_t>(p)], &a) && a.rank == p &&
                     a.commHash == ctx_.commHash && sameHost(self_, a),
                 gcclInvalidUsage,
                 "rank %d's shared-memory address does not describe a rank of this communicator "
                 "on this host, as this user and in this network namespace",
                 p);
    (p < ctx_.rank ? lower : higher).push_back(p);
  }
  std::sort(lower.begin(), lower.end());
  // Rank r connects to the lower ranks in order, then accepts: every lower
  // rank has finished its own connects by the time it accepts, so no two
  // ranks ever wait on each other.
  HandshakeConfig cfg = handshakeConfig();
  for (int p : lower) {
    Endpoint ep;
    GCCL_CHECK(connectToPeer(cfg, p, socketName(addrs[static_cast<size_t>(p)]), deadlineMs, &ep));
    (*out)[static_cast<size_t>(p)] = std::make_unique<ShmConnection>(ep, tuning_, ctx_.poller);
  }
  gcclResult_t r = acceptPeers(higher, deadlineMs, out);
  // Every peer is in (or never will be): the name goes away with the socket.
  close(listenFd_);
  listenFd_ = -1;
  return r;
}

gcclResult_t ShmTransport::acceptPeers(const std::vector<int>& higher, int64_t deadlineMs,
                                       std::vector<std::unique_ptr<transport::Connection>>* out) {
  struct Pending {
    std::unique_ptr<AcceptedPeer> peer;
    int rank = -1;  // the rank it proved to be (after HELLO)
  };
  HandshakeConfig cfg = handshakeConfig();
  std::set<int> waiting(higher.begin(), higher.end());
  std::vector<Pending> pending;
  std::vector<pollfd> fds;
  while (!waiting.empty()) {
    int64_t left = deadlineMs - monotonicMs();
    if (left <= 0)
      return setError(gcclTimeout,
                      "rank %d timed out waiting for rank(s) %s to connect over shared memory",
                      ctx_.rank, rankList(waiting).c_str());
    fds.assign(1, pollfd{listenFd_, POLLIN, 0});
    for (const Pending& p : pending)
      fds.push_back(pollfd{p.peer->fd(), POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left, 1000)));
    if (n < 0 && errno != EINTR) return setError(gcclSystemError, "poll: %s", strerror(errno));
    if (n <= 0) continue;
    size_t known = pending.size();
    for (size_t i = 0; i < known; ++i) {
      if (fds[i + 1].revents == 0) continue;
      Pending& p = pending[i];
      bool done = false;
      gcclResult_t r = p.peer->onReadable(
          [&](int rank) {
            if (waiting.count(rank) == 0 || p.rank >= 0) return false;
            for (const Pending& q : pending)
              if (q.rank == rank) return false;
            p.rank = rank;
            return true;
          },
          &done);
      if (r != gcclSuccess) {
        // A rank that proved the secret and then failed is a real failure;
        // anything else is a stranger on the socket.
        if (p.rank >= 0) return r;
        GCCL_WARN(kLogNet, "rank %d: rejected a connection on its shared-memory socket: %s",
                  ctx_.rank, threadLastError());
        p.peer.reset();
        continue;
      }
      if (!done) continue;
      Endpoint ep = p.peer->take();
      p.peer.reset();
      waiting.erase(ep.peer);
      (*out)[static_cast<size_t>(ep.peer)] =
          std::make_unique<ShmConnection>(ep, tuning_, ctx_.poller);
    }
    pending.erase(std::remove_if(pending.begin(), pending.end(),
                                 [](const Pending& p) { return p.peer == nullptr; }),
                  pending.end());
    if (fds[0].revents == 0) continue;
    for (;;) {
      int fd = accept4(listenFd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      Pending p;
      p.peer = std::make_unique<AcceptedPeer>(&cfg, fd);
      if (p.peer->start() != gcclSuccess) {
        GCCL_WARN(kLogNet, "rank %d: rejected a connection on its shared-memory socket: %s",
                  ctx_.rank, threadLastError());
        continue;
      }
      pending.push_back(std::move(p));
    }
  }
  return gcclSuccess;
}

std::unique_ptr<transport::Transport> makeShmTransport(const transport::TransportContext& ctx) {
  return std::make_unique<ShmTransport>(ctx, ShmTuning::fromParams());
}

}  // namespace gccl::shm

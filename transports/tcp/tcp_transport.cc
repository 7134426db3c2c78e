#include "transports/tcp/tcp_transport.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "base/log.h"
#include "transports/tcp/socket.h"

namespace gccl::tcp {

TcpTransport::TcpTransport(const transport::TransportContext& ctx, const TcpOptions& options)
    : ctx_(ctx), opt_(options) {}

bool TcpTransport::viable(std::string* why) {
  (void)why;
  return true;
}

gcclResult_t TcpTransport::listen(std::string* blob) {
  SockAddr local;
  GCCL_CHECK(findInterface(opt_.ifname, opt_.family, &ifname_, &local));
  MeshOptions mo;
  mo.rank = ctx_.rank;
  mo.nranks = ctx_.nranks;
  mo.sockBufBytes = opt_.sockBufBytes;
  mo.congestion = opt_.congestion;
  mo.helloTimeoutMs = opt_.helloTimeoutMs;
  mo.creds.commHash = ctx_.commHash;
  memcpy(mo.creds.secret, ctx_.secret, sizeof(mo.creds.secret));
  mesh_ = std::make_unique<TcpMesh>(mo);
  GCCL_CHECK(mesh_->listen(local, &bound_));
  uint8_t addr[kSockAddrBytes];
  encodeSockAddr(bound_, addr);
  blob->assign(reinterpret_cast<const char*>(addr), sizeof(addr));
  return gcclSuccess;
}

bool TcpTransport::canReach(const std::string& mine, const std::string& theirs) const {
  return mine.size() == kSockAddrBytes && theirs.size() == kSockAddrBytes;
}

gcclResult_t TcpTransport::connect(const std::vector<int>& peers,
                                   const std::vector<std::string>& blobs, int64_t deadlineMs,
                                   std::vector<std::unique_ptr<transport::Connection>>* out) {
  GCCL_REQUIRE(mesh_ != nullptr, gcclInternalError, "tcp: connect before listen");
  std::vector<SockAddr> addrs(static_cast<size_t>(ctx_.nranks));
  std::vector<int> sockets(static_cast<size_t>(ctx_.nranks), 0);
  for (int p : peers) {
    const std::string& b = blobs[static_cast<size_t>(p)];
    GCCL_REQUIRE(b.size() == kSockAddrBytes, gcclInternalError,
                 "tcp: rank %d published an address of %zu bytes", p, b.size());
    SockAddr& a = addrs[static_cast<size_t>(p)];
    GCCL_CHECK(decodeSockAddr(reinterpret_cast<const uint8_t*>(b.data()), &a));
    // Both ranks of a pair decide alike: an address of this host's is one of
    // theirs too (the same network namespace).
    sockets[static_cast<size_t>(p)] = dataSocketsTo(a);
  }
  std::vector<std::vector<int>> fds;
  GCCL_CHECK(mesh_->connectAll(addrs, sockets, deadlineMs, &fds));
  for (int p : peers)
    (*out)[static_cast<size_t>(p)].reset(
        new TcpConnection(p, ctx_.commHash, fds[static_cast<size_t>(p)], opt_.tuning, ctx_.poller));
  return gcclSuccess;
}

int TcpTransport::dataSocketsTo(const SockAddr& peer) const {
  if (opt_.dataSockets > 0) return opt_.dataSockets;
  // Striping pays where parallel flows meet parallel hardware (NIC queues,
  // links); between two processes of one host every flow is copied by the
  // same cores, and a second socket only adds system calls.
  return addressIsLocal(peer) ? 1 : 2;
}

namespace {

// Whether the peer already closed one of these freshly authenticated sockets
// (a member that does not take restarted ranks closes them once they prove
// the secret). Best effort: a close still on its way is not seen.
bool peerHungUp(const std::vector<int>& fds) {
  for (int fd : fds) {
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) continue;
    if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return true;
    char c;
    if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return true;
  }
  return false;
}

}  // namespace

gcclResult_t TcpTransport::rejoin(const std::vector<int>& peers,
                                  const std::vector<std::string>& blobs, uint32_t incarnation,
                                  int64_t perPeerMs, int64_t deadlineMs,
                                  std::vector<std::unique_ptr<transport::Connection>>* out) {
  GCCL_REQUIRE(incarnation >= 1 && incarnation <= kMaxRejoinIncarnation, gcclInvalidArgument,
               "tcp: rank %d cannot rejoin as incarnation %u (1 to %u)", ctx_.rank, incarnation,
               kMaxRejoinIncarnation);
  Credentials creds;
  creds.commHash = ctx_.commHash;
  memcpy(creds.secret, ctx_.secret, sizeof(creds.secret));
  if (out->size() < static_cast<size_t>(ctx_.nranks)) out->resize(static_cast<size_t>(ctx_.nranks));
  // Every address first: a bad blob is an error before any socket is made.
  std::vector<SockAddr> addrs(peers.size());
  for (size_t i = 0; i < peers.size(); ++i) {
    int p = peers[i];
    GCCL_REQUIRE(p >= 0 && p < ctx_.nranks && p != ctx_.rank, gcclInternalError,
                 "tcp: rank %d cannot rejoin rank %d of %d", ctx_.rank, p, ctx_.nranks);
    const std::string& b = blobs[static_cast<size_t>(p)];
    GCCL_REQUIRE(b.size() == kSockAddrBytes, gcclInternalError,
                 "tcp: rank %d published an address of %zu bytes", p, b.size());
    GCCL_CHECK(decodeSockAddr(reinterpret_cast<const uint8_t*>(b.data()), &addrs[i]));
  }
  for (size_t i = 0; i < peers.size(); ++i) {
    int p = peers[i];
    const SockAddr& addr = addrs[i];
    int count = 2 + dataSocketsTo(addr);
    GCCL_REQUIRE(count <= kMaxRejoinSockets, gcclInvalidUsage,
                 "tcp: %d data sockets per peer are more than a restarted rank can open (%d)",
                 count - 2, kMaxRejoinSockets - 2);
    int64_t peerDeadline = std::min(deadlineMs, nowMs() + perPeerMs);
    std::vector<int> fds;
    std::string why;
    bool gone = false;
    for (int c = 0; c < count; ++c) {
      if (nowMs() >= peerDeadline) {
        why = "no time left (" + std::to_string(perPeerMs) + " ms per peer, or the deadline)";
        break;
      }
      HelloInfo hello;
      hello.purpose = Purpose::kRejoin;
      hello.fromRank = ctx_.rank;
      hello.toRank = p;
      hello.channel = rejoinChannel(c, count, incarnation);
      int fd = -1;
      gcclResult_t r = connectOne(addr, creds, hello, peerDeadline, &fd);
      if (r != gcclSuccess) {
        why = threadLastError();
        gone = r == gcclRemoteError && c == 0;
        break;
      }
      fds.push_back(fd);
    }
    if (why.empty() && peerHungUp(fds))
      why =
          "it closed the connection once authenticated: it does not take restarted ranks (a "
          "communicator that is not fault-tolerant?)";
    if (!why.empty()) {
      for (int& fd : fds)
        closeFd(&fd);
      if (gone)
        GCCL_INFO(kLogNet, "tcp: restarted rank %d (incarnation %u) cannot reach rank %d at %s: %s",
                  ctx_.rank, incarnation, p, addr.toString().c_str(), why.c_str());
      else
        GCCL_WARN(kLogNet, "tcp: restarted rank %d (incarnation %u) cannot reach rank %d at %s: %s",
                  ctx_.rank, incarnation, p, addr.toString().c_str(), why.c_str());
      continue;
    }
    for (int fd : fds)
      tuneDataSocket(fd, opt_.sockBufBytes, opt_.congestion);
    (*out)[static_cast<size_t>(p)].reset(
        new TcpConnection(p, ctx_.commHash, fds, opt_.tuning, ctx_.poller));
  }
  return gcclSuccess;
}

std::unique_ptr<transport::Listener> TcpTransport::takeListener() {
  if (!mesh_) return nullptr;
  if (!opt_.acceptRejoins) return mesh_->releaseListener();
  RejoinAdmission admission;
  admission.sockBufBytes = opt_.sockBufBytes;
  admission.congestion = opt_.congestion;
  admission.setTimeoutMs = opt_.helloTimeoutMs;
  admission.tuning = opt_.tuning;
  admission.poller = ctx_.poller;
  return mesh_->releaseListener(&admission);
}

std::string TcpTransport::describe() const {
  return "tcp " + bound_.toString() + " (" + ifname_ + "), " +
         (opt_.dataSockets > 0 ? std::to_string(opt_.dataSockets)
                               : std::string("1 (this host) or 2 (others)")) +
         " data socket(s) per peer";
}

}  // namespace gccl::tcp

#include "transports/tcp/tcp_transport.h"

#include <cstring>

#include "base/check.h"
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

std::unique_ptr<transport::Listener> TcpTransport::takeListener() {
  return mesh_ ? mesh_->releaseListener() : nullptr;
}

std::string TcpTransport::describe() const {
  return "tcp " + bound_.toString() + " (" + ifname_ + "), " +
         (opt_.dataSockets > 0 ? std::to_string(opt_.dataSockets)
                               : std::string("1 (this host) or 2 (others)")) +
         " data socket(s) per peer";
}

}  // namespace gccl::tcp

#include "transports/tcp/tcp_transport.h"

#include <cstring>

#include "base/check.h"

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
  mo.dataSockets = opt_.dataSockets;
  mo.sockBufBytes = opt_.sockBufBytes;
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
  std::vector<bool> wanted(static_cast<size_t>(ctx_.nranks), false);
  for (int p : peers) {
    const std::string& b = blobs[static_cast<size_t>(p)];
    GCCL_REQUIRE(b.size() == kSockAddrBytes, gcclInternalError,
                 "tcp: rank %d published an address of %zu bytes", p, b.size());
    GCCL_CHECK(
        decodeSockAddr(reinterpret_cast<const uint8_t*>(b.data()), &addrs[static_cast<size_t>(p)]));
    wanted[static_cast<size_t>(p)] = true;
  }
  std::vector<std::vector<int>> fds;
  GCCL_CHECK(mesh_->connectAll(addrs, wanted, deadlineMs, &fds));
  for (int p : peers)
    (*out)[static_cast<size_t>(p)].reset(
        new TcpConnection(p, ctx_.commHash, fds[static_cast<size_t>(p)], opt_.tuning, ctx_.poller));
  return gcclSuccess;
}

std::unique_ptr<transport::Listener> TcpTransport::takeListener() {
  return mesh_ ? mesh_->releaseListener() : nullptr;
}

std::string TcpTransport::describe() const {
  return "tcp " + bound_.toString() + " (" + ifname_ + "), " + std::to_string(opt_.dataSockets) +
         " data socket(s) per peer";
}

}  // namespace gccl::tcp

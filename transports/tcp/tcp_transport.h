// TCP as a Transport (transport.h): the fallback that reaches every rank.
// Its address blob is the rank's listening socket address; its connections
// are TcpConnections over a mesh of authenticated sockets (tcp_mesh.h); after
// set-up its listening socket keeps turning latecomers away (acceptor.h), but
// for restarted ranks of a fault-tolerant communicator, which rejoin over TCP.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/net_if.h"
#include "transports/tcp/tcp_connection.h"
#include "transports/tcp/tcp_mesh.h"
#include "transports/transport.h"

namespace gccl::tcp {

struct TcpOptions {
  std::string ifname;   // GCCL_SOCKET_IFNAME syntax
  std::string family;   // "AF_INET", "AF_INET6" or "" (either): GCCL_SOCKET_FAMILY
  int dataSockets = 0;  // per peer; 0: 1 to an address of this host, 2 to others
  int64_t sockBufBytes = 0;
  std::string congestion = "auto";  // GCCL_TCP_CONGESTION
  int64_t helloTimeoutMs = kMaxHelloWaitMs;
  TcpTuning tuning;
  // The listener handed to the engine admits restarted ranks rejoining
  // (fault-tolerant communicators; acceptor.h's LateListener).
  bool acceptRejoins = false;
};

class TcpTransport final : public transport::Transport {
 public:
  TcpTransport(const transport::TransportContext& ctx, const TcpOptions& options);
  const char* name() const override { return "tcp"; }
  bool viable(std::string* why) override;
  gcclResult_t listen(std::string* blob) override;
  // Any two ranks can try TCP: it is the transport of last resort.
  bool canReach(const std::string& mine, const std::string& theirs) const override;
  gcclResult_t connect(const std::vector<int>& peers, const std::vector<std::string>& blobs,
                       int64_t deadlineMs,
                       std::vector<std::unique_ptr<transport::Connection>>* out) override;
  // Each peer's sockets are made one after another (at most perPeerMs for
  // all of them), then checked once for a peer that hung up at once (one
  // that does not take restarted ranks closes what it authenticated).
  gcclResult_t rejoin(const std::vector<int>& peers, const std::vector<std::string>& blobs,
                      uint32_t incarnation, int64_t perPeerMs, int64_t deadlineMs,
                      std::vector<std::unique_ptr<transport::Connection>>* out) override;
  std::unique_ptr<transport::Listener> takeListener() override;
  std::string describe() const override;

  bool socketAddress(SockAddr* addr, std::string* ifname) const override {
    *addr = bound_;
    *ifname = ifname_;
    return true;
  }

 private:
  // Data sockets to the peer listening at `peer` (TcpOptions::dataSockets).
  int dataSocketsTo(const SockAddr& peer) const;
  transport::TransportContext ctx_;
  TcpOptions opt_;
  std::unique_ptr<TcpMesh> mesh_;
  SockAddr bound_;
  std::string ifname_;
};

}  // namespace gccl::tcp

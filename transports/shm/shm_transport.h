// The shared-memory transport ("shm") for ranks on one host: set-up in
// shm_setup.h, the connection (rings, single-copy reads, sleep and wake-up,
// control channel) in shm_connection.h.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transports/shm/shm_connection.h"
#include "transports/shm/shm_setup.h"
#include "transports/transport.h"

namespace gccl::shm {

class ShmTransport final : public transport::Transport {
 public:
  ShmTransport(const transport::TransportContext& ctx, const ShmTuning& tuning);
  ~ShmTransport() override;
  ShmTransport(const ShmTransport&) = delete;
  ShmTransport& operator=(const ShmTransport&) = delete;

  const char* name() const override { return "shm"; }
  // Linux with memfd_create, a readable boot id and namespace links.
  bool viable(std::string* why) override;
  // Listens on a fresh abstract unix socket; the blob says where and on which host.
  gcclResult_t listen(std::string* blob) override;
  // Same boot id, network namespace and uid.
  bool canReach(const std::string& mine, const std::string& theirs) const override;
  // Connects to the lower-ranked peers (in rank order), then accepts the
  // higher-ranked ones; closes the listening socket when all are in.
  gcclResult_t connect(const std::vector<int>& peers, const std::vector<std::string>& blobs,
                       int64_t deadlineMs,
                       std::vector<std::unique_ptr<transport::Connection>>* out) override;

 private:
  gcclResult_t acceptPeers(const std::vector<int>& higher, int64_t deadlineMs,
                           std::vector<std::unique_ptr<transport::Connection>>* out);
  HandshakeConfig handshakeConfig() const;

  transport::TransportContext ctx_;
  ShmTuning tuning_;
  Address self_;
  int listenFd_ = -1;
};

// The shm transport with its tuning from the GCCL_SHM_* parameters.
std::unique_ptr<transport::Transport> makeShmTransport(const transport::TransportContext& ctx);

}  // namespace gccl::shm

// What the plugin's two sources share: the comm, its requests and memory
// handles, the per-communicator context, and the conversion of gccl's
// results (with their reasons, logged) to NCCL's. Private to plugins/nccl-net.
#pragma once

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/check.h"
#include "base/log.h"
#include "plugins/nccl-net/net_comm.h"
#include "transports/tcp/socket.h"
#include "transports/tcp/tcp_connection.h"

namespace gccl::nccl_net {

inline constexpr int kMaxRequests = NCCL_NET_MAX_REQUESTS;

// The result NCCL gets for the reason gccl recorded.
inline ncclResult_t toNccl(gcclResult_t r) {
  switch (r) {
    case gcclSuccess:
      return ncclSuccess;
    case gcclInvalidArgument:
      return ncclInvalidArgument;
    case gcclInvalidUsage:
      return ncclInvalidUsage;
    case gcclRemoteError:
      return ncclRemoteError;
    case gcclSystemError:
      return ncclSystemError;
    default:
      return ncclInternalError;
  }
}

#define NET_CHECK(call)                                                    \
  do {                                                                     \
    gcclResult_t res_ = (call);                                            \
    if (res_ != gcclSuccess) {                                             \
      GCCL_WARN(kLogNet, "NET/gccl: %s: %s", __func__, threadLastError()); \
      return toNccl(res_);                                                 \
    }                                                                      \
  } while (0)

#define NET_REQUIRE(cond, code, ...)                \
  do {                                              \
    if (!(cond)) {                                  \
      GCCL_WARN(kLogNet, "NET/gccl: " __VA_ARGS__); \
      return (code);                                \
    }                                               \
  } while (0)

class Context {
 public:
  uint64_t commId = 0;
  int trafficClass = -1;
  ncclNetAttr_t attr{};
};

struct MemHandle {
  transport::MemoryRegion region;
};

struct NetRequest {
  Comm* comm = nullptr;
  bool used = false;
  bool isSend = false;
  int n = 0;
  size_t capacity[kMaxRecvs] = {};
  transport::Request sub[kMaxRecvs];
};

// One side of one connection: NCCL's send comm or recv comm.
class Comm final : public transport::Poller {
 public:
  Comm(bool isSend, uint64_t id, std::string peer)
      : isSend_(isSend), id_(id), peer_(std::move(peer)) {}
  ~Comm() override {
    conn_.reset();  // unwatches its fds through this poller
    if (epfd_ >= 0) close(epfd_);
  }

  gcclResult_t start(std::vector<int> fds) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      for (int& fd : fds)
        tcp::closeFd(&fd);
      return setError(gcclSystemError, "epoll_create1: %s", strerror(errno));
    }
    tcp::TcpTuning tuning;
    conn_ = std::make_unique<tcp::TcpConnection>(0, id_, std::move(fds), tuning, this);
    for (NetRequest& r : slots_)
      r.comm = this;
    return conn_->start();
  }

  gcclResult_t watch(int fd, uint32_t events, void*) override {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    bool known = std::find(watched_.begin(), watched_.end(), fd) != watched_.end();
    if (epoll_ctl(epfd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
      return setError(gcclSystemError, "epoll_ctl(fd %d): %s", fd, strerror(errno));
    if (!known) watched_.push_back(fd);
    return gcclSuccess;
  }
  void unwatch(int fd) override {
    auto it = std::find(watched_.begin(), watched_.end(), fd);
    if (it == watched_.end()) return;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    watched_.erase(it);
  }

  // Moves what the sockets allow, without waiting. Once broken, every call
  // returns the same error.
  ncclResult_t progress() {
    if (broken_ != ncclSuccess) return broken_;
    epoll_event evs[16];
    int n = epoll_wait(epfd_, evs, 16, 0);
    if (n < 0 && errno != EINTR) return fail(gcclSystemError, strerror(errno));
    for (int i = 0; i < n; ++i) {
      gcclResult_t r = conn_->onEvents(evs[i].data.fd, evs[i].events);
      if (r != gcclSuccess) return fail(r, threadLastError());
    }
    return ncclSuccess;
  }

  ncclResult_t fail(gcclResult_t r, const char* why) {
    if (broken_ == ncclSuccess) {
      broken_ = r == gcclSystemError ? ncclSystemError : ncclRemoteError;
      GCCL_WARN(kLogNet, "NET/gccl: %s comm %016llx with %s failed: %s", isSend_ ? "send" : "recv",
                static_cast<unsigned long long>(id_), peer_.c_str(), why);
    }
    return broken_;
  }

  NetRequest* takeSlot() {
    for (NetRequest& r : slots_)
      if (!r.used) {
        r.used = true;
        return &r;
      }
    return nullptr;
  }

  // The transport tag of the next message with NCCL tag `tag`: messages of
  // one tag match in posting order on both sides.
  uint64_t nextTag(int tag) {
    uint32_t& k = seq_[tag];
    uint64_t t = transport::kP2PTagBit | (static_cast<uint64_t>(k & 0x7fffffffu) << 32) |
                 static_cast<uint32_t>(tag);
    ++k;
    return t;
  }

  std::mutex mu;
  bool isSend() const { return isSend_; }
  ncclResult_t broken() const { return broken_; }
  tcp::TcpConnection& conn() { return *conn_; }
  const std::string& peer() const { return peer_; }
  uint64_t id() const { return id_; }

 private:
  bool isSend_;
  uint64_t id_;
  std::string peer_;
  int epfd_ = -1;
  std::vector<int> watched_;
  std::unique_ptr<tcp::TcpConnection> conn_;
  NetRequest slots_[kMaxRequests];
  std::unordered_map<int, uint32_t> seq_;
  ncclResult_t broken_ = ncclSuccess;
};

}  // namespace gccl::nccl_net

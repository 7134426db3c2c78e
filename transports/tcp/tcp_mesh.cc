#include "transports/tcp/tcp_mesh.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "core/check.h"
#include "core/log.h"
#include "transports/tcp/socket.h"

namespace gccl::tcp {

TcpMesh::~TcpMesh() {
  closeFd(&listenFd_);
}

gcclResult_t TcpMesh::listen(const SockAddr& addr, SockAddr* bound) {
  return listenOn(addr, &listenFd_, bound);
}

int TcpMesh::releaseListenFd() {
  int fd = listenFd_;
  listenFd_ = -1;
  return fd;
}

// Accepts the sockets of every higher rank, authenticating each; anything
// else is closed and logged.
gcclResult_t TcpMesh::acceptLoop(int64_t deadlineMs, const std::atomic<bool>* stop,
                                 std::vector<std::vector<int>>* fds) {
  int perPeer = opt_.dataSockets + 2;  // control, asynchronous lane, data
  int expected = (opt_.nranks - 1 - opt_.rank) * perPeer;
  std::vector<std::unique_ptr<ServerHandshake>> pending;
  std::vector<SockAddr> pendingFrom;
  while (expected > 0) {
    int64_t now = nowMs();
    if (stop->load()) {
      for (auto& h : pending)
        close(h->fd());
      return setError(gcclInternalError, "stopped accepting: connecting to a peer failed");
    }
    if (now >= deadlineMs) {
      for (auto& h : pending)
        close(h->fd());
      std::string missing;
      for (int r = opt_.rank + 1; r < opt_.nranks; ++r)
        for (int c = 0; c < perPeer; ++c)
          if ((*fds)[static_cast<size_t>(r)][static_cast<size_t>(c)] < 0) {
            missing += (missing.empty() ? "" : ", ") + std::to_string(r);
            break;
          }
      return setError(gcclTimeout, "timed out waiting for connections from rank(s) %s",
                      missing.c_str());
    }
    // Expire silent connectors.
    for (size_t i = 0; i < pending.size();) {
      if (now < pending[i]->deadlineMs()) {
        ++i;
        continue;
      }
      GCCL_WARN(kLogNet, "rank %d: rejected a connection from %s: no valid hello in time",
                opt_.rank, pendingFrom[i].toString().c_str());
      close(pending[i]->fd());
      pending.erase(pending.begin() + static_cast<long>(i));
      pendingFrom.erase(pendingFrom.begin() + static_cast<long>(i));
    }
    std::vector<pollfd> pfds;
    pfds.push_back({listenFd_, POLLIN, 0});
    for (auto& h : pending)
      pfds.push_back({h->fd(), POLLIN, 0});
    int wait = static_cast<int>(std::min<int64_t>(deadlineMs - now, 200));
    int n = poll(pfds.data(), pfds.size(), wait);
    if (n <= 0) continue;
    if (pfds[0].revents & POLLIN) {
      for (;;) {
        int fd = -1;
        SockAddr from;
        GCCL_CHECK(acceptOne(listenFd_, &fd, &from));
        if (fd < 0) break;
        auto h = std::make_unique<ServerHandshake>();
        int64_t hsDeadline = std::min(deadlineMs, nowMs() + 10000);
        if (h->start(fd, &opt_.creds, hsDeadline) != gcclSuccess) {
          GCCL_WARN(kLogNet, "rank %d: rejected a connection from %s: %s", opt_.rank,
                    from.toString().c_str(), threadLastError());
          close(fd);
          continue;
        }
        pending.push_back(std::move(h));
        pendingFrom.push_back(from);
      }
    }
    for (size_t i = 1; i < pfds.size(); ++i) {
      if (pfds[i].revents == 0) continue;
      size_t idx = 0;
      while (idx < pending.size() && pending[idx]->fd() != pfds[i].fd)
        ++idx;
      if (idx == pending.size()) continue;
      ServerHandshake& h = *pending[idx];
      bool complete = false;
      gcclResult_t r = h.onReadable(&complete);
      if (r == gcclSuccess && !complete) continue;
      const HelloInfo& info = h.info();
      if (r == gcclSuccess) {
        bool valid = info.purpose == Purpose::kData && info.toRank == opt_.rank &&
                     info.fromRank > opt_.rank && info.fromRank < opt_.nranks &&
                     info.channel < static_cast<uint32_t>(perPeer);
        int& slot = valid ? (*fds)[static_cast<size_t>(info.fromRank)][info.channel] : expected;
        if (valid && slot < 0) {
          slot = h.fd();
          --expected;
        } else {
          r = setError(gcclInternalError,
                       "unexpected or duplicate hello (purpose %u, rank %d -> %d, socket %u)",
                       static_cast<unsigned>(info.purpose), info.fromRank, info.toRank,
                       info.channel);
        }
      }
      if (r != gcclSuccess) {
        GCCL_WARN(kLogNet, "rank %d: rejected a connection from %s: %s", opt_.rank,
                  pendingFrom[idx].toString().c_str(), threadLastError());
        close(h.fd());
      }
      pending.erase(pending.begin() + static_cast<long>(idx));
      pendingFrom.erase(pendingFrom.begin() + static_cast<long>(idx));
    }
  }
  for (auto& h : pending)
    close(h->fd());
  return gcclSuccess;
}

gcclResult_t TcpMesh::connectAll(const std::vector<SockAddr>& peers, int64_t deadlineMs,
                                 std::vector<std::vector<int>>* fds) {
  int perPeer = opt_.dataSockets + 2;  // control, asynchronous lane, data
  fds->assign(static_cast<size_t>(opt_.nranks), std::vector<int>(static_cast<size_t>(perPeer), -1));
  auto closeAll = [fds] {
    for (auto& v : *fds)
      for (int& fd : v)
        closeFd(&fd);
  };
  // Accept from higher ranks while connecting to lower ones, so no rank waits
  // on another's connect order.
  gcclResult_t acceptResult = gcclSuccess;
  std::string acceptError;
  std::atomic<bool> stop{false};
  std::thread acceptor([&] {
    acceptResult = acceptLoop(deadlineMs, &stop, fds);
    if (acceptResult != gcclSuccess) acceptError = threadLastError();
  });
  gcclResult_t r = gcclSuccess;
  for (int peer = 0; peer < opt_.rank && r == gcclSuccess; ++peer) {
    for (int c = 0; c < perPeer && r == gcclSuccess; ++c) {
      int fd = -1;
      r = startConnect(peers[static_cast<size_t>(peer)], &fd);
      if (r != gcclSuccess) {
        r = setError(r, "connecting to rank %d at %s: %s", peer,
                     peers[static_cast<size_t>(peer)].toString().c_str(), threadLastError());
        break;
      }
      HelloInfo hello;
      hello.purpose = Purpose::kData;
      hello.fromRank = opt_.rank;
      hello.toRank = peer;
      hello.channel = static_cast<uint32_t>(c);
      r = clientHandshake(fd, opt_.creds, hello, deadlineMs);
      if (r != gcclSuccess) {
        close(fd);
        r = setError(r, "connecting to rank %d at %s: %s", peer,
                     peers[static_cast<size_t>(peer)].toString().c_str(), threadLastError());
        break;
      }
      (*fds)[static_cast<size_t>(peer)][static_cast<size_t>(c)] = fd;
    }
  }
  if (r != gcclSuccess) stop = true;
  acceptor.join();
  if (r == gcclSuccess && acceptResult != gcclSuccess)
    r = setError(acceptResult, "%s", acceptError.c_str());
  if (r != gcclSuccess) {
    closeAll();
    return r;
  }
  for (auto& v : *fds)
    for (int fd : v)
      if (fd >= 0) tuneDataSocket(fd, opt_.sockBufBytes);
  return gcclSuccess;
}

}  // namespace gccl::tcp

#include "transports/tcp/tcp_mesh.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "base/check.h"
#include "base/log.h"
#include "transports/tcp/socket.h"

namespace gccl::tcp {

namespace {

constexpr int64_t kRetryPauseMs = 20;

}  // namespace

gcclResult_t connectOne(const SockAddr& addr, const Credentials& creds, const HelloInfo& hello,
                        int64_t deadlineMs, int* out) {
  for (;;) {
    int fd = -1;
    GCCL_CHECK(startConnect(addr, &fd));
    gcclResult_t r = waitConnected(fd, deadlineMs);
    bool accepted = r == gcclSuccess;
    if (accepted) r = clientHandshake(fd, creds, hello, deadlineMs);
    if (r == gcclSuccess) {
      *out = fd;
      return gcclSuccess;
    }
    close(fd);
    if (r != gcclRemoteError || !accepted || nowMs() + kRetryPauseMs >= deadlineMs) return r;
    usleep(kRetryPauseMs * 1000);
  }
}

gcclResult_t TcpMesh::listen(const SockAddr& addr, SockAddr* bound) {
  int fd = -1;
  GCCL_CHECK(listenOn(addr, &fd, bound));
  AcceptorOptions ao;
  ao.who = "rank " + std::to_string(opt_.rank);
  ao.logSubsys = kLogNet;
  ao.helloTimeoutMs = opt_.helloTimeoutMs;
  acceptor_ = std::make_unique<Acceptor>(opt_.creds, ao);
  return acceptor_->start(fd);
}

std::unique_ptr<transport::Listener> TcpMesh::releaseListener(const RejoinAdmission* rejoins) {
  if (!acceptor_) return nullptr;
  if (rejoins == nullptr) return std::make_unique<LateListener>(std::move(acceptor_));
  RejoinAdmission admission = *rejoins;
  admission.rank = opt_.rank;
  admission.nranks = opt_.nranks;
  admission.commHash = opt_.creds.commHash;
  return std::make_unique<LateListener>(std::move(acceptor_), admission);
}

// Accepts the sockets of every higher rank, authenticated by the acceptor;
// anything else is closed and logged.
gcclResult_t TcpMesh::acceptLoop(const std::vector<int>& dataSockets, int64_t deadlineMs,
                                 const std::atomic<bool>* stop,
                                 std::vector<std::vector<int>>* fds) {
  // Control, asynchronous lane, data; none from a peer another transport serves.
  auto perPeer = [&dataSockets](int r) {
    int d = dataSockets[static_cast<size_t>(r)];
    return d > 0 ? d + 2 : 0;
  };
  int expected = 0;
  for (int r = opt_.rank + 1; r < opt_.nranks; ++r)
    expected += perPeer(r);
  std::vector<Admitted> admitted;
  while (expected > 0) {
    int64_t now = nowMs();
    if (stop->load())
      return setError(gcclInternalError, "stopped accepting: connecting to a peer failed");
    if (now >= deadlineMs) {
      std::string missing;
      for (int r = opt_.rank + 1; r < opt_.nranks; ++r)
        for (int c = 0; c < perPeer(r); ++c)
          if ((*fds)[static_cast<size_t>(r)][static_cast<size_t>(c)] < 0) {
            missing += (missing.empty() ? "" : ", ") + std::to_string(r);
            break;
          }
      return setError(gcclTimeout, "timed out waiting for connections from rank(s) %s",
                      missing.c_str());
    }
    // Wake for the acceptor's own deadlines, and every 200 ms to notice `stop`.
    int64_t wake = std::min({deadlineMs, acceptor_->nextDeadlineMs(), now + 200});
    pollfd p{acceptor_->pollFd(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(wake - now, 0))) < 0 && errno != EINTR)
      return setError(gcclSystemError, "poll: %s", strerror(errno));
    admitted.clear();
    acceptor_->process(nowMs(), &admitted);
    for (Admitted& a : admitted) {
      const HelloInfo& info = a.info;
      bool valid = info.purpose == Purpose::kData && info.toRank == opt_.rank &&
                   info.fromRank > opt_.rank && info.fromRank < opt_.nranks &&
                   info.channel < static_cast<uint32_t>(perPeer(info.fromRank));
      int* slot = valid ? &(*fds)[static_cast<size_t>(info.fromRank)][info.channel] : nullptr;
      if (slot != nullptr && *slot < 0) {
        *slot = a.fd;
        --expected;
        continue;
      }
      acceptor_->reject(&a, "unexpected or duplicate hello (purpose " +
                                std::to_string(static_cast<unsigned>(info.purpose)) + ", rank " +
                                std::to_string(info.fromRank) + " -> " +
                                std::to_string(info.toRank) + ", socket " +
                                std::to_string(info.channel) + ")");
    }
  }
  return gcclSuccess;
}

gcclResult_t TcpMesh::connectAll(const std::vector<SockAddr>& peers,
                                 const std::vector<int>& dataSockets, int64_t deadlineMs,
                                 std::vector<std::vector<int>>* fds) {
  fds->assign(static_cast<size_t>(opt_.nranks), {});
  for (int r = 0; r < opt_.nranks; ++r) {
    int d = dataSockets[static_cast<size_t>(r)];
    (*fds)[static_cast<size_t>(r)].assign(d > 0 ? static_cast<size_t>(d) + 2 : 0, -1);
  }
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
    acceptResult = acceptLoop(dataSockets, deadlineMs, &stop, fds);
    if (acceptResult != gcclSuccess) acceptError = threadLastError();
  });
  gcclResult_t r = gcclSuccess;
  for (int peer = 0; peer < opt_.rank && r == gcclSuccess; ++peer) {
    int perPeer = static_cast<int>((*fds)[static_cast<size_t>(peer)].size());
    for (int c = 0; c < perPeer && r == gcclSuccess; ++c) {
      HelloInfo hello;
      hello.purpose = Purpose::kData;
      hello.fromRank = opt_.rank;
      hello.toRank = peer;
      hello.channel = static_cast<uint32_t>(c);
      int fd = -1;
      r = connectOne(peers[static_cast<size_t>(peer)], opt_.creds, hello, deadlineMs, &fd);
      if (r != gcclSuccess) {
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
      if (fd >= 0) tuneDataSocket(fd, opt_.sockBufBytes, opt_.congestion);
  return gcclSuccess;
}

}  // namespace gccl::tcp

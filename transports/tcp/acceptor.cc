#include "transports/tcp/acceptor.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "base/check.h"
#include "base/log.h"
#include "transports/tcp/socket.h"

namespace gccl::tcp {

struct Acceptor::Pending {
  ServerHandshake handshake;
  SockAddr from;
  int64_t acceptedMs = 0;
};

Acceptor::Acceptor(const Credentials& creds, const AcceptorOptions& options)
    : creds_(creds), opt_(options) {
  if (opt_.helloTimeoutMs <= 0) opt_.helloTimeoutMs = kMaxHelloWaitMs;
}

Acceptor::~Acceptor() {
  flushWarnings(nowMs(), true);
  for (auto& p : pending_)
    close(p->handshake.fd());
  closeFd(&listenFd_);
  closeFd(&epollFd_);
}

gcclResult_t Acceptor::start(int listenFd) {
  listenFd_ = listenFd;
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epollFd_ < 0) return setError(gcclSystemError, "epoll_create1: %s", strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listenFd_;
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, listenFd_, &ev) != 0)
    return setError(gcclSystemError, "epoll_ctl(listening socket): %s", strerror(errno));
  listenWatched_ = true;
  cap_ = cap();
  return gcclSuccess;
}

size_t Acceptor::cap() const {
  // An eighth of the descriptors at most: the rendezvous root and the mesh
  // may both be under attack, and the rest of the process needs its share.
  rlimit rl{};
  rlim_t limit = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = rl.rlim_cur;
  return std::clamp<size_t>(static_cast<size_t>(limit / 8), 4, 128);
}

bool Acceptor::oldestPastGrace(int64_t now) const {
  return !pending_.empty() && now - pending_.front()->acceptedMs >= kEvictGraceMs;
}

int64_t Acceptor::resumeAtMs() const {
  int64_t at = backoffUntilMs_;
  // Full of connections still within their grace: the next one may wait in
  // the kernel's queue until the oldest has had its chance.
  if (pending_.size() >= cap_) at = std::max(at, pending_.front()->acceptedMs + kEvictGraceMs);
  return at;
}

void Acceptor::closePending(size_t index) {
  int fd = pending_[index]->handshake.fd();
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  pending_.erase(pending_.begin() + static_cast<long>(index));
}

void Acceptor::evictOldest(int64_t now, const std::string& why) {
  warn(kEvicted, now,
       "closed a connection from " + pending_.front()->from.toString() +
           " that had not authenticated after " +
           std::to_string(now - pending_.front()->acceptedMs) + " ms, " + why);
  closePending(0);
}

void Acceptor::process(int64_t now, std::vector<Admitted>* out) {
  epoll_event events[64];
  int n = epoll_wait(epollFd_, events, 64, 0);
  bool listenReady = false;
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    if (fd == listenFd_) {
      listenReady = true;
      continue;
    }
    size_t idx = 0;
    while (idx < pending_.size() && pending_[idx]->handshake.fd() != fd)
      ++idx;
    if (idx == pending_.size()) continue;
    Pending& p = *pending_[idx];
    bool complete = false;
    gcclResult_t r = p.handshake.onReadable(&complete);
    if (r == gcclSuccess && !complete) continue;
    if (r != gcclSuccess) {
      warn(kRejected, now,
           "rejected a connection from " + p.from.toString() + ": " + threadLastError());
      closePending(idx);
      continue;
    }
    Admitted a;
    a.fd = fd;
    a.from = p.from;
    a.info = p.handshake.info();
    epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd, nullptr);
    pending_.erase(pending_.begin() + static_cast<long>(idx));
    out->push_back(a);
  }
  for (size_t i = 0; i < pending_.size();) {
    if (now < pending_[i]->handshake.deadlineMs()) {
      ++i;
      continue;
    }
    warn(kExpired, now,
         "closed a connection from " + pending_[i]->from.toString() + ": no valid hello within " +
             std::to_string(opt_.helloTimeoutMs) + " ms");
    closePending(i);
  }
  // A back-off or a full house ended: the listening socket was not watched.
  if (!listenWatched_ && now >= resumeAtMs()) listenReady = true;
  if (listenReady) acceptReady(now);
  flushWarnings(now, false);
  updateListenWatch(now);
}

void Acceptor::acceptReady(int64_t now) {
  cap_ = cap();
  // Bounded: each pass accepts (up to the cap), closes a connection past its
  // grace, drops one the kernel had already given up on, or returns.
  for (;;) {
    if (pending_.size() >= cap_) {
      if (!oldestPastGrace(now)) return;
      evictOldest(now, "to make room (" + std::to_string(cap_) +
                           " unauthenticated connections are the most this end keeps)");
    }
    SockAddr from;
    from.len = sizeof(from.storage);
    int fd = accept4(listenFd_, from.sa(), &from.len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM) continue;
      if ((e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) && oldestPastGrace(now)) {
        evictOldest(now, "to free a file descriptor");
        continue;
      }
      backoffUntilMs_ = now + kBackoffMs;
      warn(kAcceptFailed, now,
           std::string("cannot accept connections: accept: ") + strerror(e) + " (" +
               std::to_string(pending_.size()) +
               " unauthenticated connection(s) pending); trying again in " +
               std::to_string(kBackoffMs) + " ms");
      return;
    }
    auto p = std::make_unique<Pending>();
    p->from = from;
    p->acceptedMs = now;
    if (p->handshake.start(fd, &creds_, now + opt_.helloTimeoutMs) != gcclSuccess) {
      warn(kRejected, now,
           "rejected a connection from " + from.toString() + ": " + threadLastError());
      close(fd);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      warn(kRejected, now,
           "rejected a connection from " + from.toString() +
               ": cannot watch it: " + strerror(errno));
      close(fd);
      continue;
    }
    pending_.push_back(std::move(p));
  }
}

void Acceptor::updateListenWatch(int64_t now) {
  bool want = now >= resumeAtMs();
  if (want == listenWatched_) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listenFd_;
  if (epoll_ctl(epollFd_, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listenFd_, &ev) == 0) {
    listenWatched_ = want;
  } else if (want) {
    backoffUntilMs_ = now + kBackoffMs;
    warn(kAcceptFailed, now,
         std::string("cannot watch the listening socket: epoll_ctl: ") + strerror(errno) +
             "; trying again in " + std::to_string(kBackoffMs) + " ms");
  }
}

int64_t Acceptor::nextDeadlineMs() const {
  int64_t next = INT64_MAX;
  for (const auto& p : pending_)
    next = std::min(next, p->handshake.deadlineMs());
  if (!listenWatched_) next = std::min(next, resumeAtMs());
  for (const WarnState& w : warn_)
    if (w.suppressed > 0) next = std::min(next, w.lastMs + kWarnIntervalMs);
  return next;
}

void Acceptor::reject(Admitted* conn, const std::string& why) {
  warn(kRejected, nowMs(), "rejected a connection from " + conn->from.toString() + ": " + why);
  closeFd(&conn->fd);
}

void Acceptor::warn(Kind kind, int64_t now, const std::string& text) {
  WarnState& w = warn_[kind];
  if (w.logged && now - w.lastMs < kWarnIntervalMs) {
    ++w.suppressed;
    w.last = text;
    return;
  }
  if (w.suppressed > 0)
    GCCL_WARN(opt_.logSubsys, "%s: %s (and %llu more like it in the last %lld ms, not logged)",
              opt_.who.c_str(), text.c_str(), static_cast<unsigned long long>(w.suppressed),
              static_cast<long long>(now - w.lastMs));
  else
    GCCL_WARN(opt_.logSubsys, "%s: %s", opt_.who.c_str(), text.c_str());
  w.logged = true;
  w.lastMs = now;
  w.suppressed = 0;
}

void Acceptor::flushWarnings(int64_t now, bool all) {
  for (WarnState& w : warn_) {
    if (w.suppressed == 0 || (!all && now - w.lastMs < kWarnIntervalMs)) continue;
    // The line shows the last of them and counts the others.
    if (w.suppressed > 1)
      GCCL_WARN(opt_.logSubsys, "%s: %s (and %llu more like it in the last %lld ms, not logged)",
                opt_.who.c_str(), w.last.c_str(), static_cast<unsigned long long>(w.suppressed - 1),
                static_cast<long long>(now - w.lastMs));
    else
      GCCL_WARN(opt_.logSubsys, "%s: %s", opt_.who.c_str(), w.last.c_str());
    w.lastMs = now;
    w.suppressed = 0;
  }
}

LateListener::LateListener(std::unique_ptr<Acceptor> acceptor, const RejoinAdmission& rejoins)
    : acceptor_(std::move(acceptor)),
      acceptRejoins_(true),
      rejoin_(rejoins),
      connected_(static_cast<size_t>(std::max(rejoins.nranks, 0)), 0) {
  if (rejoin_.setTimeoutMs <= 0) rejoin_.setTimeoutMs = kMaxHelloWaitMs;
}

LateListener::~LateListener() {
  for (RejoinSet& set : sets_)
    for (int& fd : set.fds)
      closeFd(&fd);
}

void LateListener::poll() {
  admitted_.clear();
  int64_t now = nowMs();
  acceptor_->process(now, &admitted_);
  for (Admitted& a : admitted_) {
    if (acceptRejoins_ && a.info.purpose == Purpose::kRejoin) {
      admitRejoin(&a, now);
      continue;
    }
    acceptor_->reject(&a, "it authenticated as rank " + std::to_string(a.info.fromRank) +
                              ", but this communicator takes connections only while it is built" +
                              (acceptRejoins_ ? " or from a restarted rank" : ""));
  }
  for (size_t i = 0; i < sets_.size();) {
    if (now < sets_[i].deadlineMs) {
      ++i;
      continue;
    }
    dropSet(i, "the rest did not arrive within " + std::to_string(rejoin_.setTimeoutMs) + " ms");
  }
}

void LateListener::dropSet(size_t index, const std::string& why) {
  RejoinSet& set = sets_[index];
  GCCL_WARN(kLogNet,
            "rank %d: dropped the %d of %zu socket(s) restarted rank %d (incarnation %u) "
            "opened: %s",
            rejoin_.rank, set.have, set.fds.size(), set.peer, set.incarnation, why.c_str());
  for (int& fd : set.fds)
    closeFd(&fd);
  sets_.erase(sets_.begin() + static_cast<long>(index));
}

void LateListener::admitRejoin(Admitted* a, int64_t now) {
  const HelloInfo& info = a->info;
  int peer = info.fromRank;
  int index = rejoinSocketIndex(info.channel);
  int count = rejoinSocketCount(info.channel);
  uint32_t incarnation = rejoinIncarnation(info.channel);
  std::string what = "rejoin hello (rank " + std::to_string(peer) + " -> " +
                     std::to_string(info.toRank) + ", incarnation " + std::to_string(incarnation) +
                     ", socket " + std::to_string(index) + " of " + std::to_string(count) + ")";
  if (info.toRank != rejoin_.rank || peer < 0 || peer >= rejoin_.nranks || peer == rejoin_.rank ||
      count < kMinRejoinSockets || count > kMaxRejoinSockets || index >= count ||
      incarnation == 0) {
    acceptor_->reject(a, "invalid " + what);
    return;
  }
  if (incarnation <= connected_[static_cast<size_t>(peer)]) {
    acceptor_->reject(a, "stale or duplicate " + what + ": incarnation " +
                             std::to_string(connected_[static_cast<size_t>(peer)]) +
                             " of that rank already connected");
    return;
  }
  size_t i = 0;
  while (i < sets_.size() && sets_[i].peer != peer)
    ++i;
  if (i < sets_.size() && sets_[i].incarnation > incarnation) {
    acceptor_->reject(a, "stale " + what + ": incarnation " + std::to_string(sets_[i].incarnation) +
                             " of that rank is arriving");
    return;
  }
  if (i < sets_.size() && sets_[i].incarnation < incarnation) {
    dropSet(i, "incarnation " + std::to_string(incarnation) + " of that rank replaces it");
    i = sets_.size();
  }
  if (i == sets_.size()) {
    RejoinSet set;
    set.peer = peer;
    set.incarnation = incarnation;
    set.deadlineMs = now + rejoin_.setTimeoutMs;
    set.fds.assign(static_cast<size_t>(count), -1);
    sets_.push_back(std::move(set));
  }
  RejoinSet& set = sets_[i];
  if (static_cast<size_t>(count) != set.fds.size() || set.fds[static_cast<size_t>(index)] >= 0) {
    acceptor_->reject(a, "duplicate or inconsistent " + what + " (" +
                             std::to_string(set.fds.size()) + " socket(s) announced before)");
    return;
  }
  set.fds[static_cast<size_t>(index)] = a->fd;
  a->fd = -1;
  if (++set.have < count) return;
  // Complete: tuned as the mesh tunes its sockets, handed over unstarted.
  for (int fd : set.fds)
    tuneDataSocket(fd, rejoin_.sockBufBytes, rejoin_.congestion);
  transport::Arrival arrival;
  arrival.peer = peer;
  arrival.incarnation = incarnation;
  arrival.conn.reset(
      new TcpConnection(peer, rejoin_.commHash, set.fds, rejoin_.tuning, rejoin_.poller));
  connected_[static_cast<size_t>(peer)] = incarnation;
  GCCL_INFO(kLogNet, "rank %d: restarted rank %d (incarnation %u) connected with %d socket(s)",
            rejoin_.rank, peer, incarnation, count);
  sets_.erase(sets_.begin() + static_cast<long>(i));
  arrivals_.push_back(std::move(arrival));
}

int64_t LateListener::nextDeadlineMs() const {
  int64_t next = acceptor_->nextDeadlineMs();
  for (const RejoinSet& set : sets_)
    next = std::min(next, set.deadlineMs);
  return next;
}

bool LateListener::takeArrival(transport::Arrival* out) {
  if (arrivals_.empty()) return false;
  *out = std::move(arrivals_.front());
  arrivals_.pop_front();
  return true;
}

}  // namespace gccl::tcp

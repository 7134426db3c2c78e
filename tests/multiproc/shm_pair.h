// Two forked processes joined by the shared-memory transport, for the shm
// tests: each builds an ShmTransport with a tiny Poller of its own (an epoll
// set), publishes its address blob on a board shared with the parent and the
// other child, connects, and runs the test's function with its end of the
// pair. The parent stays single-threaded (forking a threaded process is not
// safe) and only watches the children, with a deadline.
#pragma once

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "common/multiproc.h"
#include "base/check.h"
#include "transports/shm/shm_transport.h"

namespace gccl::shm::test {

using gccl::test::RankOutcome;
using transport::Connection;
using transport::MessageMeta;
using transport::Request;

inline int64_t nowMsForTest() {
  return monotonicMs();
}

// Open file descriptors of this process.
inline int countOpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n - 1;  // the directory's own descriptor
}

// The engine's part, reduced to an epoll set.
class EpollPoller final : public transport::Poller {
 public:
  explicit EpollPoller(std::string report)
      : ep_(epoll_create1(EPOLL_CLOEXEC)), report_(std::move(report)) {}
  ~EpollPoller() override { close(ep_); }
  gcclResult_t watch(int fd, uint32_t events, void*) override {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev) == 0) return gcclSuccess;
    if (errno == ENOENT && epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0) return gcclSuccess;
    return setError(gcclSystemError, "epoll_ctl(%d): %s", fd, strerror(errno));
  }
  void unwatch(int fd) override { epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }
  const std::string& livenessReport() const override { return report_; }
  int fd() const { return ep_; }

 private:
  int ep_;
  std::string report_;
};

// What the children and the parent share (an anonymous shared mapping).
struct PairBoard {
  uint64_t commHash;
  std::atomic<int> published[2];
  uint32_t blobLen[2];
  char blob[2][transport::kMaxAddressBlobBytes];
  std::atomic<int> connected[2];
  std::atomic<int> flags[8];  // the test's own signals
  std::atomic<int64_t> stamps[4];
  std::atomic<int> pid[2];
  std::atomic<int> fdsBefore[2];  // before the child built anything
  char text[2][1024];
};

struct PairRank {
  int rank = 0;
  PairBoard* board = nullptr;
  std::unique_ptr<EpollPoller> poller;
  std::unique_ptr<ShmTransport> transport;
  std::unique_ptr<Connection> conn;
  std::string error;  // the connection's error text, after a failure

  ShmConnection* shm() const { return static_cast<ShmConnection*>(conn.get()); }

  // Drives the connection as the engine does (poll; when nothing moved, arm
  // and sleep in epoll) until `done` holds. gcclTimeout after `timeoutMs`;
  // the connection's error (text in `error`) if it breaks.
  // `maxSleepMs` bounds each sleep: the time to notice a `done` that no
  // event of the connection announces (a flag on the board).
  gcclResult_t driveUntil(const std::function<bool()>& done, int64_t timeoutMs,
                          int64_t maxSleepMs = 200) {
    int64_t deadline = nowMsForTest() + timeoutMs;
    for (;;) {
      if (done()) return gcclSuccess;
      int64_t left = deadline - nowMsForTest();
      if (left <= 0) return gcclTimeout;
      bool moved = false;
      gcclResult_t r = conn->poll(&moved);
      if (r != gcclSuccess) return failed(r);
      // What poll() did may be what we wait for (a goodbye, a pong).
      if (moved || done()) continue;
      bool sleep = conn->armForSleep();
      epoll_event evs[8];
      int n = epoll_wait(poller->fd(), evs, 8,
                         sleep ? static_cast<int>(std::min<int64_t>(left, maxSleepMs)) : 0);
      for (int i = 0; i < n; ++i) {
        r = conn->onEvents(evs[i].data.fd, evs[i].events);
        if (r != gcclSuccess) return failed(r);
      }
      if (!sleep && n <= 0) sched_yield();
    }
  }
  gcclResult_t waitFor(const Request& req, int64_t timeoutMs = 20000) {
    return driveUntil([&] { return !req.pending(); }, timeoutMs);
  }
  gcclResult_t waitFlag(int i, int64_t timeoutMs = 20000) {
    return driveUntil([&] { return board->flags[i].load() != 0; }, timeoutMs, 2);
  }
  void setFlag(int i) { board->flags[i].store(1); }
  // Destroys what this rank built; true when it left no descriptor open.
  bool teardownLeavesNoFds() {
    conn.reset();
    transport.reset();
    poller.reset();
    return countOpenFds() == board->fdsBefore[rank].load();
  }
  gcclResult_t failed(gcclResult_t r) {
    error = threadLastError();
    return r;
  }
};

struct PairOptions {
  ShmTuning tuning[2];
  // Runs in each child before its transport exists (to change credentials, say).
  std::function<bool(int rank)> beforeTransport;
  // Runs in each child just before it connects, with the other's address.
  std::function<bool(int rank, const Address& other)> beforeConnect;
  int timeoutSec = 60;
};

using PairFn = std::function<int(PairRank& me)>;

// In a child: the transport, the blob exchange and the connection.
inline int runPairChild(int rank, PairBoard* board, const PairOptions& opt, const PairFn& fn) {
  if (opt.beforeTransport && !opt.beforeTransport(rank)) return 2;
  board->pid[rank].store(getpid());
  board->fdsBefore[rank].store(countOpenFds());
  PairRank me;
  me.rank = rank;
  me.board = board;
  me.poller = std::make_unique<EpollPoller>("report of rank " + std::to_string(rank));
  transport::TransportContext ctx;
  ctx.rank = rank;
  ctx.nranks = 2;
  ctx.commHash = board->commHash;
  for (int i = 0; i < 32; ++i)
    ctx.secret[i] = static_cast<uint8_t>(i * 13 + 1);
  ctx.poller = me.poller.get();
  me.transport = std::make_unique<ShmTransport>(ctx, opt.tuning[rank]);
  std::string why, blob;
  RANK_CHECK(me.transport->viable(&why), "shm is not viable: %s", why.c_str());
  RANK_OK(me.transport->listen(&blob));
  RANK_CHECK(blob.size() <= transport::kMaxAddressBlobBytes, "blob of %zu bytes", blob.size());
  memcpy(board->blob[rank], blob.data(), blob.size());
  board->blobLen[rank] = static_cast<uint32_t>(blob.size());
  board->published[rank].store(1);
  int other = 1 - rank;
  int64_t deadline = nowMsForTest() + 20000;
  while (board->published[other].load() == 0) {
    RANK_CHECK(nowMsForTest() < deadline, "rank %d never published its blob", other);
    usleep(1000);
  }
  std::vector<std::string> blobs(2);
  blobs[static_cast<size_t>(rank)] = blob;
  blobs[static_cast<size_t>(other)].assign(board->blob[other], board->blobLen[other]);
  RANK_CHECK(me.transport->canReach(blob, blobs[static_cast<size_t>(other)]),
             "two forked processes cannot reach each other");
  Address otherAddr;
  RANK_CHECK(decodeAddress(blobs[static_cast<size_t>(other)], &otherAddr), "undecodable blob");
  if (opt.beforeConnect && !opt.beforeConnect(rank, otherAddr)) return 3;
  std::vector<std::unique_ptr<Connection>> conns;
  RANK_OK(me.transport->connect({other}, blobs, nowMsForTest() + 20000, &conns));
  RANK_CHECK(conns.size() == 2 && conns[static_cast<size_t>(other)] != nullptr,
             "no connection to rank %d", other);
  me.conn = std::move(conns[static_cast<size_t>(other)]);
  RANK_CHECK(strcmp(me.conn->transportName(), "shm") == 0 && me.conn->peer() == other,
             "connection is %s to rank %d", me.conn->transportName(), me.conn->peer());
  RANK_OK(me.conn->start());
  board->connected[rank].store(1);
  int code = fn(me);
  // As the engine does on a normal destroy: the peer takes the end of file
  // that follows as a departure, not a death.
  if (me.conn != nullptr) me.conn->sendCloseNotice();
  return code;
}

// Forks the two ranks; `control` runs in the parent with their pids.
inline std::vector<RankOutcome> runShmPair(
    const PairFn& fn, const PairOptions& opt = PairOptions(), PairBoard** boardOut = nullptr,
    const std::function<void(PairBoard*, const std::vector<int>&)>& control = nullptr) {
  static gccl::test::SharedArea area(sizeof(PairBoard));
  auto* board = new (area.data()) PairBoard();
  board->commHash = (static_cast<uint64_t>(getpid()) << 32) ^ static_cast<uint64_t>(nowMsForTest());
  if (boardOut != nullptr) *boardOut = board;
  fflush(stdout);
  fflush(stderr);
  std::vector<int> pids;
  for (int r = 0; r < 2; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      int code = runPairChild(r, board, opt, fn);
      fflush(stdout);
      fflush(stderr);
      _exit(code);
    }
    pids.push_back(pid);
  }
  if (control) control(board, pids);
  std::vector<RankOutcome> out(2);
  int64_t deadline = nowMsForTest() + opt.timeoutSec * 1000;
  for (size_t i = 0; i < 2; ++i) {
    for (;;) {
      int status = 0;
      pid_t w = waitpid(pids[i], &status, WNOHANG);
      if (w == pids[i]) {
        if (WIFEXITED(status)) out[i].exitCode = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) out[i].signal = WTERMSIG(status);
        break;
      }
      if (nowMsForTest() > deadline) {
        out[i].timedOut = true;
        kill(pids[i], SIGKILL);
        waitpid(pids[i], &status, 0);
        break;
      }
      usleep(2000);
    }
  }
  return out;
}

// Deterministic pseudo-random bytes (xorshift64*), so that both sides can
// generate what the other sent.
inline void fillRandom(uint8_t* p, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t v = x * 0x2545f4914f6cdd1dull;
    memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i)
    p[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
}

}  // namespace gccl::shm::test

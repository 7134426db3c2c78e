// Connections that never authenticate must not deny service: idle strangers
// during initialization with few file descriptors left, a flood of them after
// initialization while accept() fails with EMFILE, floods of garbage (the log
// stays readable), a single idle stranger (the progress thread sleeps until
// its deadline), and the timeouts that initialization accepts.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/multiproc.h"
#include "core/bootstrap.h"
#include "core/comm.h"
#include "transports/tcp/socket.h"

namespace gccl::test {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

gcclResult_t initWithTimeout(gcclComm_t* comm, int n, const gcclUniqueId& id, int rank, int ms) {
  gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
  cfg.timeoutMs = ms;
  return gcclCommInitRankConfig(comm, n, id, rank, &cfg);
}

// Waits (sleeping) until `flag` is set or `ms` passed; true when it was set.
bool waitFlag(const std::atomic<int>& flag, int64_t ms) {
  int64_t until = nowMs() + ms;
  while (flag.load() == 0) {
    if (nowMs() >= until) return false;
    usleep(5000);
  }
  return true;
}

// A TCP connection to `addr` that sends nothing; -1 when it could not be made in 5 s.
int connectIdle(const SockAddr& addr) {
  int fd = -1;
  if (tcp::startConnect(addr, &fd) != gcclSuccess) return -1;
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof(err);
  if (poll(&p, 1, 5000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// True when the other side closed `fd` (EOF or reset) before `deadlineMs`;
// whatever it sent first (a handshake challenge) is read and dropped.
bool closedByPeer(int fd, int64_t deadlineMs) {
  for (;;) {
    int64_t left = deadlineMs - nowMs();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return true;
  }
}

// The addresses `pid` listens on (TCP, IPv4 and IPv6), from /proc: its socket
// inodes matched against the kernel's table of listening sockets.
std::vector<SockAddr> listeningAddrsOf(int pid) {
  std::set<std::string> inodes;
  std::string fdDir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = opendir(fdDir.c_str())) {
    while (dirent* e = readdir(d)) {
      char target[128];
      std::string link = fdDir + "/" + e->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      unsigned long inode = 0;
      if (sscanf(target, "socket:[%lu]", &inode) == 1) inodes.insert(std::to_string(inode));
    }
    closedir(d);
  }
  std::vector<SockAddr> out;
  for (bool v6 : {false, true}) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/net/" + (v6 ? "tcp6" : "tcp"));
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retr, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >>
          inode;
      if (state != "0A" || inodes.count(inode) == 0) continue;  // 0A: LISTEN
      size_t colon = local.find(':');
      if (colon == std::string::npos) continue;
      std::string hex = local.substr(0, colon);
      int port = static_cast<int>(strtol(local.c_str() + colon + 1, nullptr, 16));
      SockAddr a;
      // The kernel prints the address as 32-bit words in host order.
      if (!v6 && hex.size() == 8) {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&a.storage);
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = static_cast<uint32_t>(strtoul(hex.c_str(), nullptr, 16));
        a.len = sizeof(sockaddr_in);
      } else if (v6 && hex.size() == 32) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
        s6->sin6_family = AF_INET6;
        for (int w = 0; w < 4; ++w) {
          uint32_t word = static_cast<uint32_t>(strtoul(hex.substr(w * 8, 8).c_str(), nullptr, 16));
          memcpy(reinterpret_cast<uint8_t*>(&s6->sin6_addr) + 4 * w, &word, 4);
        }
        a.len = sizeof(sockaddr_in6);
      } else {
        continue;
      }
      a.setPort(port);
      out.push_back(a);
    }
  }
  return out;
}

// How many file descriptors this process has open (an RLIMIT_NOFILE of this
// plus k leaves about k free: new descriptors take the lowest free numbers).
int openFds() {
  int count = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++count;
    closedir(d);
  }
  return count;
}

bool setFdLimit(rlim_t soft) {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  rl.rlim_cur = soft;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

double processCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void sleepMs(int64_t ms) {
  int64_t until = nowMs() + ms;
  for (int64_t left = ms; left > 0; left = until - nowMs())
    usleep(static_cast<useconds_t>(left * 1000));
}

// Points GCCL_DEBUG_FILE of the ranks forked while it lives at one file per
// process (gccl reads it when it first logs), and removes the files after.
class RankLogs {
 public:
  explicit RankLogs(const char* what) {
    const char* dir = getenv("TMPDIR");
    prefix_ = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/gccl-preauth-" + what +
              "-" + std::to_string(getpid()) + "-";
    setenv("GCCL_DEBUG_FILE", (prefix_ + "%p.log").c_str(), 1);
  }
  ~RankLogs() {
    unsetenv("GCCL_DEBUG_FILE");
    for (int pid : pids_)
      unlink(path(pid).c_str());
  }
  std::string path(int pid) const { return prefix_ + std::to_string(pid) + ".log"; }
  void remember(const std::vector<int>& pids) { pids_ = pids; }
  std::vector<std::string> lines(int pid) const {
    std::vector<std::string> out;
    std::ifstream in(path(pid));
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }

 private:
  std::string prefix_;
  std::vector<int> pids_;
};

// ---- during initialization --------------------------------------------------------

struct InitBoard {
  std::atomic<int> attacked;
  std::atomic<int> initTried;  // ranks whose init returned, either way
};

// Rank 0 has few file descriptors left; while it waits for rank 1, the
// attacker opens idle connections to every port it listens on (the
// rendezvous root and its own data port). Both ranks still get in.
TEST(PreAuth, IdleStrangersDuringInitWithFewFileDescriptorsDoNotStopInit) {
  constexpr int kStrangersPerPort = 100;
  SharedArea area(sizeof(InitBoard));
  auto* board = area.as<InitBoard>();
  std::vector<int> strangers;
  size_t portsAttacked = 0;
  auto outcomes = runRanksWithControl(
      2,
      [board](int rank, int n, const gcclUniqueId& id) {
        if (rank == 0) {
          RANK_CHECK(setFdLimit(static_cast<rlim_t>(openFds() + 48)), "setrlimit: %s",
                     strerror(errno));
        } else {
          RANK_CHECK(waitFlag(board->attacked, 20000), "the attacker never finished");
        }
        gcclComm_t comm;
        gcclResult_t r = initWithTimeout(&comm, n, id, rank, 10000);
        ++board->initTried;
        RANK_OK(r);
        int32_t v = rank + 1;
        RANK_OK(gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr));
        RANK_CHECK(v == 3, "sum %d", v);
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      [&](const std::vector<int>& pids) {
        // Rank 0 listens twice (the rendezvous root, then its data port) before it waits.
        std::vector<SockAddr> ports;
        for (int64_t until = nowMs() + 15000; nowMs() < until; usleep(5000)) {
          ports = listeningAddrsOf(pids[0]);
          if (ports.size() >= 2) break;
        }
        portsAttacked = ports.size();
        for (const SockAddr& port : ports)
          for (int i = 0; i < kStrangersPerPort; ++i) {
            int fd = connectIdle(port);
            if (fd >= 0) strangers.push_back(fd);
          }
        board->attacked = 1;
        // The strangers stay connected (and silent) until both ranks are done.
        for (int64_t until = nowMs() + 30000; board->initTried.load() < 2 && nowMs() < until;)
          usleep(10000);
      },
      60);
  for (int fd : strangers)
    close(fd);
  EXPECT_EQ(portsAttacked, 2u) << "rank 0 was expected to listen on two ports during init";
  EXPECT_GE(strangers.size(), 2u * kStrangersPerPort * 9 / 10);
  std::string why;
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

struct RootBoard {
  std::atomic<int> idReady;
  std::atomic<int> strangerGone;
  gcclUniqueId id;
};

// The rendezvous root waits for a missing rank for the whole timeout, but an
// idle stranger gets only a few seconds to say hello.
TEST(PreAuth, RendezvousClosesAnIdleStrangerLongBeforeItsDeadline) {
  SharedArea area(sizeof(RootBoard));
  auto* board = area.as<RootBoard>();
  bool closedInTime = false;
  int64_t tookMs = -1;
  auto outcomes = runRanksWithControl(
      2,
      [board](int rank, int n, const gcclUniqueId& id) {
        if (rank == 0) {
          board->id = id;
          board->idReady = 1;
        } else {
          RANK_CHECK(waitFlag(board->strangerGone, 30000), "the parent never finished");
        }
        gcclComm_t comm;
        RANK_OK(initWithTimeout(&comm, n, id, rank, 40000));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      [&](const std::vector<int>&) {
        UniqueIdFields fields;
        if (waitFlag(board->idReady, 15000) && decodeUniqueId(board->id, &fields) == gcclSuccess) {
          int fd = connectIdle(fields.root);
          if (fd >= 0) {
            int64_t start = nowMs();
            closedInTime = closedByPeer(fd, start + 8000);
            tookMs = nowMs() - start;
            close(fd);
          }
        }
        board->strangerGone = 1;
      },
      90);
  EXPECT_TRUE(closedInTime) << "an idle stranger was still connected to the rendezvous after "
                            << tookMs << " ms (its deadline is 40 s away)";
  std::string why;
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

// ---- after initialization -----------------------------------------------------------

struct FloodBoard {
  std::atomic<int> exhausted;
  std::atomic<int> attacked;
  std::atomic<int> measured;
  std::atomic<int> freed;
  std::atomic<int> checked;
  SockAddr listen;
  double cpuShare;
  int64_t exhaustedMs;
};

// With no file descriptor left, accept() fails with EMFILE while strangers
// wait: the progress thread must back off instead of spinning, say so (once
// a second at most), keep the communicator working, and close the strangers
// once descriptors are free again.
TEST(PreAuth, StrangersWhileAcceptFailsWithEmfileDoNotMakeTheProgressThreadSpin) {
  constexpr int kStrangers = 50;
  SharedArea area(sizeof(FloodBoard));
  auto* board = area.as<FloodBoard>();
  std::vector<int> strangers;
  int closed = 0;
  RankLogs logs("emfile");
  int victimPid = -1;
  auto outcomes = runRanksWithControl(
      2,
      [board](int rank, int n, const gcclUniqueId& id) {
        // The TCP listener is what is attacked; TCP carries the collectives
        // too, so that nothing else polls while descriptors are exhausted.
        setenv("GCCL_TRANSPORT", "tcp", 1);
        gcclComm_t comm;
        RANK_OK(initWithTimeout(&comm, n, id, rank, 10000));
        int32_t v = rank + 1;
        if (rank == 1) {
          RANK_CHECK(waitFlag(board->measured, 30000), "rank 0 never measured");
          RANK_OK(gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr));
          RANK_CHECK(v == 3, "sum %d", v);
          RANK_CHECK(waitFlag(board->checked, 30000), "the parent never checked the strangers");
          v = 10;
          RANK_OK(gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr));
          RANK_CHECK(v == 20, "sum %d", v);
          RANK_OK(gcclCommDestroy(comm));
          return 0;
        }
        board->listen = comm->listenAddr;
        // Use up every file descriptor.
        RANK_CHECK(setFdLimit(static_cast<rlim_t>(openFds() + 64)), "setrlimit: %s",
                   strerror(errno));
        std::vector<int> filler;
        for (int fd; (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
          filler.push_back(fd);
        int64_t exhaustedAt = nowMs();
        board->exhausted = 1;
        bool attacked = waitFlag(board->attacked, 20000);
        sleepMs(300);  // the strangers reach the listening socket's queue
        double cpu0 = processCpuSeconds();
        int64_t t0 = nowMs();
        sleepMs(1000);
        double share = (processCpuSeconds() - cpu0) / (static_cast<double>(nowMs() - t0) / 1000);
        board->cpuShare = share;
        board->measured = 1;
        // Collectives work while descriptors are still exhausted (under the
        // sanitizers only once they are free again: UBSan's type check opens
        // a pipe to probe memory when its cache misses, and reports a false
        // type error when it cannot).
        gcclResult_t during = gcclSuccess;
        if (!kSanitized)
          during = gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr);
        board->exhaustedMs = nowMs() - exhaustedAt;
        for (int fd : filler)
          close(fd);
        board->freed = 1;
        if (kSanitized)
          during = gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr);
        RANK_CHECK(attacked, "the attacker never connected");
        RANK_CHECK(during == gcclSuccess && v == 3, "AllReduce amid strangers: %s, %d",
                   gcclGetErrorString(during), v);
        RANK_CHECK(share < 0.05, "the process used %.1f%% of a core while strangers waited",
                   share * 100);
        RANK_CHECK(waitFlag(board->checked, 30000), "the parent never checked the strangers");
        v = 10;
        RANK_OK(gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr));
        RANK_CHECK(v == 20, "sum %d", v);
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      [&](const std::vector<int>& pids) {
        logs.remember(pids);
        victimPid = pids[0];
        if (!waitFlag(board->exhausted, 20000)) return;
        for (int i = 0; i < kStrangers; ++i) {
          int fd = connectIdle(board->listen);
          if (fd >= 0) strangers.push_back(fd);
        }
        board->attacked = 1;
        if (!waitFlag(board->freed, 30000)) return;
        int64_t deadline = nowMs() + 15000;
        for (int fd : strangers)
          if (closedByPeer(fd, deadline)) ++closed;
        board->checked = 1;
      },
      90);
  for (int fd : strangers)
    close(fd);
  EXPECT_EQ(strangers.size(), static_cast<size_t>(kStrangers));
  EXPECT_EQ(closed, static_cast<int>(strangers.size()))
      << "strangers still connected 15 s after descriptors were freed";
  int emfileLines = 0;
  std::string all;
  for (const std::string& line : logs.lines(victimPid))
    if (line.find("Too many open files") != std::string::npos) {
      ++emfileLines;
      all += line + "\n";
    }
  int64_t allowed = board->exhaustedMs / 1000 + 2;
  EXPECT_GE(emfileLines, 1) << "accept() failing with EMFILE was never logged";
  EXPECT_LE(emfileLines, allowed) << "in " << board->exhaustedMs << " ms:\n" << all;
  std::string why;
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why << " (CPU share " << board->cpuShare << ")";
}

struct GarbageBoard {
  std::atomic<int> listenReady;
  std::atomic<int> sent;
  std::atomic<int> connections;
  SockAddr listen;
  int64_t elapsedMs;
};

// How many rejections one log line stands for: 1, plus N when the line also
// reports "N more like it" that were not logged one by one.
int rejectionsIn(const std::string& line) {
  if (line.find("rejected a connection") == std::string::npos) return 0;
  size_t more = line.find(" more like");
  if (more == std::string::npos) return 1;
  size_t start = line.rfind(' ', more - 1);
  return 1 + atoi(line.c_str() + (start == std::string::npos ? 0 : start + 1));
}

// 200 connections that send garbage: every one is rejected, but the log gets
// at most one line a second, and the lines account for all of them.
TEST(PreAuth, RejectionWarningsAreRateLimitedAndCountEveryConnection) {
  constexpr int kConnections = 200;
  SharedArea area(sizeof(GarbageBoard));
  auto* board = area.as<GarbageBoard>();
  RankLogs logs("garbage");
  int victimPid = -1;
  auto outcomes = runRanksWithControl(
      1,
      [board](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initWithTimeout(&comm, n, id, rank, 10000));
        board->listen = comm->listenAddr;
        board->listenReady = 1;
        int64_t start = nowMs();
        bool sent = waitFlag(board->sent, 30000);
        sleepMs(1500);  // the last ones are read and rejected
        RANK_OK(gcclCommDestroy(comm));
        board->elapsedMs = nowMs() - start;
        RANK_CHECK(sent, "the attacker never finished");
        return 0;
      },
      [&](const std::vector<int>& pids) {
        logs.remember(pids);
        victimPid = pids[0];
        if (!waitFlag(board->listenReady, 20000)) return;
        std::mt19937_64 rng(7);
        for (int i = 0; i < kConnections; ++i) {
          int fd = connectIdle(board->listen);
          if (fd < 0) continue;
          uint8_t junk[100];
          for (auto& b : junk)
            b = static_cast<uint8_t>(rng());
          (void)!write(fd, junk, sizeof(junk));
          close(fd);
          ++board->connections;
        }
        board->sent = 1;
      },
      60);
  std::string why;
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
  int lines = 0, total = 0;
  std::string all;
  for (const std::string& line : logs.lines(victimPid)) {
    int k = rejectionsIn(line);
    if (k == 0) continue;
    ++lines;
    total += k;
    all += line + "\n";
  }
  int64_t allowed = board->elapsedMs / 1000 + 2;
  EXPECT_LE(lines, allowed) << lines << " rejection warnings in " << board->elapsedMs << " ms:\n"
                            << all;
  EXPECT_EQ(total, board->connections.load()) << "the warnings do not account for every "
                                                 "rejected connection:\n"
                                              << all;
}

// The progress thread's voluntary context switches: one per sleep in epoll_wait.
long progressThreadSwitches() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  long switches = -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string task = std::string("/proc/self/task/") + e->d_name;
    std::ifstream comm(task + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name != "gccl-progress") continue;
    std::ifstream status(task + "/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
        switches = atol(line.c_str() + strlen("voluntary_ctxt_switches:"));
  }
  closedir(d);
  return switches;
}

struct WakeBoard {
  std::atomic<int> listenReady;
  std::atomic<int> connected;
  std::atomic<int> parentDone;
  SockAddr listen;
  long wakeups;
};

// One idle stranger on an idle communicator: the progress thread sleeps until
// the stranger's deadline instead of waking every millisecond, and the
// stranger is closed within a few seconds although the timeout is a minute.
TEST(PreAuth, APendingStrangerDoesNotWakeTheProgressThreadEveryMillisecond) {
  SharedArea area(sizeof(WakeBoard));
  auto* board = area.as<WakeBoard>();
  bool closedInTime = false;
  int64_t tookMs = -1;
  auto outcomes = runRanksWithControl(
      1,
      [board](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initWithTimeout(&comm, n, id, rank, 60000));
        board->listen = comm->listenAddr;
        board->listenReady = 1;
        bool connected = waitFlag(board->connected, 20000);
        sleepMs(200);
        long before = progressThreadSwitches();
        sleepMs(1000);
        long after = progressThreadSwitches();
        board->wakeups = after - before;
        // Alive until the parent has seen the stranger closed (or given up).
        bool parentDone = waitFlag(board->parentDone, 20000);
        RANK_OK(gcclCommDestroy(comm));
        RANK_CHECK(parentDone, "the parent never finished");
        RANK_CHECK(connected, "the stranger never connected");
        RANK_CHECK(before >= 0 && after >= 0, "no gccl-progress thread found");
        RANK_CHECK(after - before < 50, "the progress thread woke %ld times in a second",
                   after - before);
        return 0;
      },
      [&](const std::vector<int>&) {
        if (!waitFlag(board->listenReady, 20000)) return;
        int fd = connectIdle(board->listen);
        board->connected = fd >= 0 ? 1 : 0;
        if (fd < 0) return;
        int64_t start = nowMs();
        closedInTime = closedByPeer(fd, start + 8000);
        tookMs = nowMs() - start;
        close(fd);
        board->parentDone = 1;
      },
      60);
  EXPECT_TRUE(closedInTime) << "an idle stranger was still connected after " << tookMs << " ms";
  std::string why;
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why << " (" << board->wakeups << " wake-ups)";
}

// ---- timeouts ---------------------------------------------------------------------

TEST(PreAuth, TimeoutBelowTheMinimumIsRefusedNamingTheMinimum) {
  std::string why;
  auto outcomes = runRanks(1, [](int rank, int, const gcclUniqueId& id) {
    gcclComm_t comm = nullptr;
    gcclResult_t r = initWithTimeout(&comm, 2, id, rank, 200);
    RANK_CHECK(r == gcclInvalidArgument, "timeoutMs=200 gave %s (%s)", gcclGetErrorString(r),
               gcclGetLastError(nullptr));
    std::string msg = gcclGetLastError(nullptr);
    RANK_CHECK(msg.find("200") != std::string::npos && msg.find("1000") != std::string::npos,
               "the error does not name the value and the minimum: %s", msg.c_str());
    RANK_CHECK(comm == nullptr, "a refused init wrote the output");
    setenv("GCCL_TIMEOUT_MS", "300", 1);
    gcclUniqueId other;
    r = gcclGetUniqueId(&other);
    RANK_CHECK(r == gcclInvalidArgument, "GCCL_TIMEOUT_MS=300 gave %s", gcclGetErrorString(r));
    msg = gcclGetLastError(nullptr);
    RANK_CHECK(
        msg.find("GCCL_TIMEOUT_MS") != std::string::npos && msg.find("1000") != std::string::npos,
        "the error does not name the parameter and the minimum: %s", msg.c_str());
    r = gcclCommInitRank(&comm, 1, id, rank);
    RANK_CHECK(r == gcclInvalidArgument, "GCCL_TIMEOUT_MS=300 gave %s", gcclGetErrorString(r));
    return 0;
  });
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

// The shortest accepted timeout works on every size, every time (the
// rendezvous root's margin for answering scales with the timeout).
TEST(PreAuth, InitAtTheMinimumTimeoutWorksRepeatedly) {
  const char* saved = getenv("GCCL_TIMEOUT_MS");
  std::string before = saved != nullptr ? saved : "";
  setenv("GCCL_TIMEOUT_MS", "1000", 1);  // the rendezvous root's own deadline
  for (int n : {2, 4}) {
    for (int round = 0; round < 4; ++round) {
      std::string why;
      auto outcomes = runRanks(n, [](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initWithTimeout(&comm, n, id, rank, 1000));
        int32_t v = 1;
        RANK_OK(gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr));
        RANK_CHECK(v == n, "sum %d", v);
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      });
      EXPECT_TRUE(allSucceeded(outcomes, &why)) << n << " ranks, round " << round << ": " << why;
    }
  }
  if (saved != nullptr)
    setenv("GCCL_TIMEOUT_MS", before.c_str(), 1);
  else
    unsetenv("GCCL_TIMEOUT_MS");
}

}  // namespace
}  // namespace gccl::test

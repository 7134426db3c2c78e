// nccl_net_perf: time and bandwidth of the sendrecv pattern (each of two
// processes sends a message to the other and receives one, per iteration,
// as sendrecv_perf does with 2 ranks) through
//   --mode plugin   libnccl-net-gccl.so, dlopen'ed and driven through its
//                   ncclNetPlugin table as NCCL's proxy drives it, or
//   --mode socket   one plain TCP socket (TCP_NODELAY, non-blocking, poll),
// on loopback, so the plugin's cost can be set beside raw sockets and
// gccl's own sendrecv_perf in one run (perf/nccl_net_compare.py).
//
//   nccl_net_perf --mode plugin|socket [--plugin PATH] [-b 8] [-e 64M] [-f 4] [-w 20] [-n 200]
//
// The process forks its peer; the two meet over a socketpair (which also
// carries the listen handle, as NCCL's bootstrap would). One row per size:
// size, time per iteration (us, the median of the timed iterations), algbw
// (size / mean time, GB = 1e9). Every wait has a deadline (60 s). Both
// modes poll without sleeping and yield the core between polls that moved
// nothing, as NCCL's proxy thread polls.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "plugins/nccl-net/nccl_net_abi.h"

namespace {

constexpr double kDeadlineSec = 60;

struct Options {
  std::string mode = "plugin";
  std::string plugin;
  size_t minBytes = 8, maxBytes = 64u << 20;
  double factor = 4;
  int warmup = 20, iters = 200;
};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void die(const char* what) {
  fprintf(stderr, "nccl_net_perf (pid %d): %s\n", getpid(), what);
  exit(1);
}

size_t parseSize(const char* s) {
  char* end = nullptr;
  double v = strtod(s, &end);
  switch (*end) {
    case 'K':
    case 'k':
      v *= 1024;
      break;
    case 'M':
    case 'm':
      v *= 1024 * 1024;
      break;
    case 'G':
    case 'g':
      v *= 1024.0 * 1024 * 1024;
      break;
    default:
      break;
  }
  return static_cast<size_t>(v);
}

// The meeting channel between the two processes: exact reads and writes.
void xfer(int fd, void* p, size_t n, bool write) {
  auto* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t k = write ? ::write(fd, c, n) : ::read(fd, c, n);
    if (k <= 0) die("the peer process went away");
    c += k;
    n -= static_cast<size_t>(k);
  }
}
void barrier(int fd) {
  char b = 0;
  xfer(fd, &b, 1, true);
  xfer(fd, &b, 1, false);
}

// One way of moving a message each way per iteration.
class Pattern {
 public:
  virtual ~Pattern() = default;
  virtual void prepare(size_t bytes) = 0;
  virtual void iterate(size_t bytes) = 0;
};

class PluginPattern final : public Pattern {
 public:
  PluginPattern(const std::string& path, int rank, int meet) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) die(dlerror());
    net_ = static_cast<const ncclNet_v11_t*>(dlsym(lib, "ncclNetPlugin_v11"));
    if (net_ == nullptr) die("no ncclNetPlugin_v11 in the library");
    if (net_->init(&ctx_, 1, nullptr, nullptr, nullptr) != ncclSuccess) die("init");
    uint8_t mine[NCCL_NET_HANDLE_MAXSIZE] = {}, theirs[NCCL_NET_HANDLE_MAXSIZE];
    if (net_->listen(ctx_, 0, mine, &listen_) != ncclSuccess) die("listen");
    if (rank == 0) {
      xfer(meet, mine, sizeof(mine), true);
      xfer(meet, theirs, sizeof(theirs), false);
    } else {
      xfer(meet, theirs, sizeof(theirs), false);
      xfer(meet, mine, sizeof(mine), true);
    }
    double end = now() + kDeadlineSec;
    ncclNetDeviceHandle_t* dh = nullptr;
    while (send_ == nullptr || recv_ == nullptr) {
      if (now() > end) die("connect/accept did not finish in 60 s");
      if (send_ == nullptr && net_->connect(ctx_, 0, theirs, &send_, &dh) != ncclSuccess)
        die("connect");
      if (recv_ == nullptr && net_->accept(listen_, &recv_, &dh) != ncclSuccess) die("accept");
    }
  }
  ~PluginPattern() override {
    release();
    net_->closeSend(send_);
    net_->closeRecv(recv_);
    net_->closeListen(listen_);
    net_->finalize(ctx_);
  }
  void prepare(size_t bytes) override {
    release();
    out_.assign(std::max<size_t>(bytes, 1), 1);
    in_.assign(std::max<size_t>(bytes, 1), 0);
    if (net_->regMr(send_, out_.data(), out_.size(), NCCL_PTR_HOST, &smh_) != ncclSuccess ||
        net_->regMr(recv_, in_.data(), in_.size(), NCCL_PTR_HOST, &rmh_) != ncclSuccess)
      die("regMr");
  }
  void iterate(size_t bytes) override {
    void* rreq = nullptr;
    void* sreq = nullptr;
    void* data = in_.data();
    size_t size = bytes;
    int tag = 0;
    double end = now() + kDeadlineSec;
    while (rreq == nullptr) {
      if (net_->irecv(recv_, 1, &data, &size, &tag, &rmh_, nullptr, &rreq) != ncclSuccess)
        die("irecv");
      if (now() > end) die("irecv stayed NULL");
    }
    while (sreq == nullptr) {
      if (net_->isend(send_, out_.data(), bytes, 0, smh_, nullptr, &sreq) != ncclSuccess)
        die("isend");
      if (now() > end) die("isend stayed NULL");
    }
    int sdone = 0, rdone = 0;
    while (!sdone || !rdone) {
      if (!sdone && net_->test(sreq, &sdone, nullptr) != ncclSuccess) die("test send");
      int got = 0;
      if (!rdone && net_->test(rreq, &rdone, &got) != ncclSuccess) die("test recv");
      if (now() > end) die("a transfer did not finish in 60 s");
      // Both processes poll: on a machine with fewer free cores than
      // pollers, the core goes to the peer instead of spinning out a slice.
      if (!sdone || !rdone) sched_yield();
    }
  }

 private:
  void release() {
    if (smh_ != nullptr) net_->deregMr(send_, smh_);
    if (rmh_ != nullptr) net_->deregMr(recv_, rmh_);
    smh_ = rmh_ = nullptr;
  }
  const ncclNet_v11_t* net_ = nullptr;
  void* ctx_ = nullptr;
  void *listen_ = nullptr, *send_ = nullptr, *recv_ = nullptr;
  void *smh_ = nullptr, *rmh_ = nullptr;
  std::vector<uint8_t> out_, in_;
};

class SocketPattern final : public Pattern {
 public:
  SocketPattern(int rank, int meet) {
    if (rank == 0) {
      int l = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof(a);
      if (bind(l, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(l, 1) != 0 ||
          getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        die("listen");
      xfer(meet, &a, sizeof(a), true);
      fd_ = accept(l, nullptr, nullptr);
      close(l);
    } else {
      sockaddr_in a{};
      xfer(meet, &a, sizeof(a), false);
      fd_ = socket(AF_INET, SOCK_STREAM, 0);
      if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("connect");
    }
    if (fd_ < 0) die("accept");
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~SocketPattern() override { close(fd_); }
  void prepare(size_t bytes) override {
    out_.assign(std::max<size_t>(bytes, 1), 1);
    in_.assign(std::max<size_t>(bytes, 1), 0);
  }
  // Sends and receives at once (poll): neither side can wait for the other.
  void iterate(size_t bytes) override {
    size_t sent = 0, got = 0;
    double end = now() + kDeadlineSec;
    while (sent < bytes || got < bytes) {
      if (sent < bytes) {
        ssize_t k = send(fd_, out_.data() + sent, bytes - sent, MSG_NOSIGNAL);
        if (k > 0)
          sent += static_cast<size_t>(k);
        else if (errno != EAGAIN)
          die("send");
      }
      if (got < bytes) {
        ssize_t k = recv(fd_, in_.data() + got, bytes - got, 0);
        if (k > 0)
          got += static_cast<size_t>(k);
        else if (k == 0 || errno != EAGAIN)
          die("recv");
      }
      if (now() > end) die("a transfer did not finish in 60 s");
      if (sent < bytes || got < bytes) sched_yield();  // as the plugin's loop does
    }
  }

 private:
  int fd_ = -1;
  std::vector<uint8_t> out_, in_;
};

int runRank(const Options& o, int rank, int meet) {
  Pattern* p = o.mode == "plugin" ? static_cast<Pattern*>(new PluginPattern(o.plugin, rank, meet))
                                  : static_cast<Pattern*>(new SocketPattern(rank, meet));
  if (rank == 0) {
    printf("# nccl_net_perf: mode %s%s%s, 2 processes, sendrecv pattern, warmup %d, iters %d\n",
           o.mode.c_str(), o.mode == "plugin" ? ", " : "",
           o.mode == "plugin" ? o.plugin.c_str() : "", o.warmup, o.iters);
    printf("#%13s %12s %12s %12s\n", "size(B)", "time(us)", "mean(us)", "algbw(GB/s)");
  }
  for (size_t bytes = o.minBytes; bytes <= o.maxBytes;
       bytes = std::max(bytes + 1, static_cast<size_t>(static_cast<double>(bytes) * o.factor))) {
    p->prepare(bytes);
    for (int i = 0; i < o.warmup; ++i)
      p->iterate(bytes);
    barrier(meet);
    std::vector<double> t(static_cast<size_t>(o.iters));
    double total0 = now();
    for (int i = 0; i < o.iters; ++i) {
      double t0 = now();
      p->iterate(bytes);
      t[static_cast<size_t>(i)] = now() - t0;
    }
    double mean = (now() - total0) / o.iters;
    std::sort(t.begin(), t.end());
    if (rank == 0)
      printf("%14zu %12.2f %12.2f %12.3f\n", bytes, t[t.size() / 2] * 1e6, mean * 1e6,
             static_cast<double>(bytes) / mean / 1e9);
    fflush(stdout);
    if (bytes >= o.maxBytes) break;
  }
  barrier(meet);
  delete p;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) die(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--mode")
      o.mode = next();
    else if (a == "--plugin")
      o.plugin = next();
    else if (a == "-b")
      o.minBytes = parseSize(next());
    else if (a == "-e")
      o.maxBytes = parseSize(next());
    else if (a == "-f")
      o.factor = atof(next());
    else if (a == "-w")
      o.warmup = atoi(next());
    else if (a == "-n")
      o.iters = atoi(next());
    else
      die(("unknown flag " + a + " (--mode plugin|socket --plugin PATH -b -e -f -w -n)").c_str());
  }
  if (o.mode != "plugin" && o.mode != "socket") die("--mode is plugin or socket");
  if (o.mode == "plugin" && o.plugin.empty()) die("--mode plugin needs --plugin PATH");
  if (o.iters < 1 || o.factor <= 1 || o.minBytes > o.maxBytes) die("bad -n, -f, -b or -e");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(sv[0]);
    _exit(runRank(o, 1, sv[1]));
  }
  close(sv[1]);
  int rc = runRank(o, 0, sv[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

// Point-to-point latency and bandwidth of gccl over TCP on loopback, beside
// plain blocking TCP sockets measured by the same binary between the same
// two processes.
//
// Two processes: main() forks an echo peer before anything starts a thread,
// then runs the benchmarks in the parent. The child creates the unique id
// (gcclGetUniqueId starts the rendezvous thread in the process that calls it,
// and the parent must stay single-threaded until the fork), listens for the
// raw socket and passes both to the parent through a pipe. The parent is
// gccl rank 0, the child rank 1.
//
// Before every benchmark run the parent writes a command (mode, message size,
// number of exchanges) on a second pipe, so the child performs exactly the
// exchanges the parent is about to time, then waits for the next command. It
// exits on an exit command, when the pipe closes, after kIdleMs without one,
// or when the parent dies (PR_SET_PDEATHSIG). The parent reaps it, killing it
// if it has not exited within kReapMs.
//
// Exchanges, for a message of n bytes:
//   ping-pong  the parent sends n bytes, the child sends them back. Time per
//              iteration = one round trip; the one_way_us counter is half of
//              it. bytes/s counts 2 n per iteration (both directions).
//   streaming  the parent sends n bytes, the child answers with a 1-byte ack
//              once all have arrived. bytes/s counts n per iteration.
// The raw baseline uses one blocking socket with TCP_NODELAY and the kernel's
// default buffer sizes; gccl uses its defaults (GCCL_NSOCKS_PERPEER data
// sockets, messages from GCCL_STRIPE_MIN_BYTES on striped across them) and
// the blocking forms of gcclSend/gcclRecv on uint8 data.
//
// Besides Google Benchmark's flags, --cpus=A,B pins the benchmarks (and
// gccl's threads in that process) to CPU A and the echo peer to CPU B.
//
// Every wait is bounded: pipes and accept are polled with a deadline, the raw
// sockets carry SO_RCVTIMEO/SO_SNDTIMEO (a timeout per system call, which
// adds no system call to the measured path), and gccl's own timeout is set to
// kTimeoutMs.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gccl/gccl.h"

namespace {

constexpr int kTimeoutMs = 60000;  // any one wait on the peer
constexpr int kIdleMs = 300000;    // the child's wait for its next command
constexpr int kReapMs = 30000;     // the parent's wait for the child to exit
constexpr uint32_t kMagic = 0x67626e63u;

enum class Mode : uint32_t { kExit = 0, kRawPingPong, kRawStream, kGcclPingPong, kGcclStream };

struct Command {
  uint32_t magic = kMagic;
  Mode mode = Mode::kExit;
  uint64_t bytes = 0;
  uint64_t count = 0;  // exchanges, warm-up included
};

// What the child tells the parent once it is ready to be connected to.
struct Hello {
  int32_t ok = 0;
  uint16_t port = 0;  // the raw socket's port on 127.0.0.1
  gcclUniqueId id;
};

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Waits until fd is ready for `events` or the deadline passes.
bool waitFd(int fd, short events, int64_t deadlineMs) {
  for (;;) {
    const int64_t left = deadlineMs - nowMs();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// Exactly len bytes through a pipe, polling with a deadline. False on EOF,
// error or timeout.
bool pipeRead(int fd, void* data, size_t len, int timeoutMs) {
  const int64_t deadline = nowMs() + timeoutMs;
  auto* p = static_cast<uint8_t*>(data);
  while (len > 0) {
    if (!waitFd(fd, POLLIN, deadline)) return false;
    const ssize_t n = read(fd, p, len);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool pipeWrite(int fd, const void* data, size_t len, int timeoutMs) {
  const int64_t deadline = nowMs() + timeoutMs;
  const auto* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    if (!waitFd(fd, POLLOUT, deadline)) return false;
    const ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Raw socket I/O: blocking calls, each bounded by SO_RCVTIMEO/SO_SNDTIMEO.
bool sockRead(int fd, void* data, size_t len) {
  auto* p = static_cast<uint8_t*>(data);
  while (len > 0) {
    const ssize_t n = recv(fd, p, len, 0);
    if (n == 0) {
      errno = 0;  // end of stream: the peer closed the connection
      return false;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool sockWrite(int fd, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    const ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void tuneRawSocket(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{kTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

gcclResult_t initComm(gcclComm_t* comm, const gcclUniqueId& id, int rank) {
  gcclConfig_t config = GCCL_CONFIG_INITIALIZER;
  config.timeoutMs = kTimeoutMs;
  return gcclCommInitRankConfig(comm, 2, id, rank, &config);
}

// Pins the calling thread, and the threads it starts later, to `cpu`
// (-1: leaves the affinity alone).
bool pinTo(int cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) == 0) return true;
  fprintf(stderr, "tcp_bench: cannot run on CPU %d: %s\n", cpu, strerror(errno));
  return false;
}

// ---- The echo peer (child, gccl rank 1) ------------------------------------

// One command's exchanges. False as soon as one fails.
bool serve(const Command& c, int rawFd, gcclComm_t comm, std::vector<uint8_t>& buf) {
  const size_t n = c.bytes;
  if (buf.size() < n) buf.resize(n);
  uint8_t* p = buf.data();
  for (uint64_t i = 0; i < c.count; ++i) {
    switch (c.mode) {
      case Mode::kRawPingPong:
        if (!sockRead(rawFd, p, n) || !sockWrite(rawFd, p, n)) return false;
        break;
      case Mode::kRawStream:
        if (!sockRead(rawFd, p, n) || !sockWrite(rawFd, p + n - 1, 1)) return false;
        break;
      case Mode::kGcclPingPong:
        if (gcclRecv(p, n, gcclUint8, 0, comm, nullptr, nullptr) != gcclSuccess ||
            gcclSend(p, n, gcclUint8, 0, comm, nullptr, nullptr) != gcclSuccess)
          return false;
        break;
      case Mode::kGcclStream:
        if (gcclRecv(p, n, gcclUint8, 0, comm, nullptr, nullptr) != gcclSuccess ||
            gcclSend(p + n - 1, 1, gcclUint8, 0, comm, nullptr, nullptr) != gcclSuccess)
          return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

[[noreturn]] void childMain(pid_t parent, int cmdFd, int helloFd, int cpu) {
  // Die with the parent, even if it is killed before it can say goodbye.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  if (!pinTo(cpu)) _exit(1);

  Hello hello;
  int listenFd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t addrLen = sizeof addr;
  if (listenFd >= 0 && bind(listenFd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      listen(listenFd, 1) == 0 &&
      getsockname(listenFd, reinterpret_cast<sockaddr*>(&addr), &addrLen) == 0 &&
      gcclGetUniqueId(&hello.id) == gcclSuccess) {
    hello.ok = 1;
    hello.port = ntohs(addr.sin_port);
  } else {
    fprintf(stderr, "tcp_bench child: setup failed: %s / %s\n", strerror(errno),
            gcclGetLastError(nullptr));
  }
  if (!pipeWrite(helloFd, &hello, sizeof hello, kTimeoutMs) || !hello.ok) _exit(1);
  close(helloFd);

  int rawFd = -1;
  if (waitFd(listenFd, POLLIN, nowMs() + kTimeoutMs)) rawFd = accept(listenFd, nullptr, nullptr);
  close(listenFd);
  if (rawFd < 0) {
    fprintf(stderr, "tcp_bench child: the parent did not connect\n");
    _exit(1);
  }
  tuneRawSocket(rawFd);

  gcclComm_t comm = nullptr;
  if (initComm(&comm, hello.id, 1) != gcclSuccess) {
    fprintf(stderr, "tcp_bench child: gcclCommInitRank: %s\n", gcclGetLastError(nullptr));
    _exit(1);
  }

  int code = 0;
  std::vector<uint8_t> buf;
  Command c;
  while (pipeRead(cmdFd, &c, sizeof c, kIdleMs) && c.magic == kMagic && c.mode != Mode::kExit) {
    if (!serve(c, rawFd, comm, buf)) {
      fprintf(stderr, "tcp_bench child: exchange failed: %s / %s\n", strerror(errno),
              gcclGetLastError(comm));
      code = 1;
      break;
    }
  }
  close(rawFd);
  // After a failure the peer may be gone: abort rather than wait for it.
  if (code == 0) {
    gcclCommDestroy(comm);
  } else {
    gcclCommAbort(comm);
  }
  fflush(stderr);
  _exit(code);
}

// ---- The benchmarks (parent, gccl rank 0) ----------------------------------

struct Peer {
  pid_t pid = -1;
  int cmdFd = -1;
  int rawFd = -1;
  gcclComm_t comm = nullptr;
  // Set when an exchange failed: the child may be out of step, so every later
  // benchmark is skipped with this reason.
  std::string broken;
};
Peer peer;

// A few exchanges before the timed ones: connections warm, buffers faulted in.
uint64_t warmupCount(size_t bytes) {
  return bytes >= (8u << 20) ? 1 : 10;
}

void fill(std::vector<uint8_t>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<uint8_t>(i * 31 + 7);
}

// One exchange as the parent sees it. `in` gets the echo (ping-pong) or the
// ack (streaming, 1 byte).
bool exchange(Mode mode, const std::vector<uint8_t>& out, std::vector<uint8_t>& in) {
  const size_t n = out.size();
  switch (mode) {
    case Mode::kRawPingPong:
      return sockWrite(peer.rawFd, out.data(), n) && sockRead(peer.rawFd, in.data(), n);
    case Mode::kRawStream:
      return sockWrite(peer.rawFd, out.data(), n) && sockRead(peer.rawFd, in.data(), 1);
    case Mode::kGcclPingPong:
      return gcclSend(out.data(), n, gcclUint8, 1, peer.comm, nullptr, nullptr) == gcclSuccess &&
             gcclRecv(in.data(), n, gcclUint8, 1, peer.comm, nullptr, nullptr) == gcclSuccess;
    case Mode::kGcclStream:
      return gcclSend(out.data(), n, gcclUint8, 1, peer.comm, nullptr, nullptr) == gcclSuccess &&
             gcclRecv(in.data(), 1, gcclUint8, 1, peer.comm, nullptr, nullptr) == gcclSuccess;
    default:
      return false;
  }
}

// Marks the peer broken with the reason: gccl's own message for a gccl
// exchange, otherwise the system error (errno 0: the peer closed the socket).
void fail(benchmark::State& state, const char* what, bool viaGccl) {
  const int err = errno;
  char buf[512];
  if (viaGccl) {
    snprintf(buf, sizeof buf, "%s failed: %s", what, gcclGetLastError(peer.comm));
  } else if (err == EAGAIN || err == EWOULDBLOCK) {
    snprintf(buf, sizeof buf, "%s failed: no progress within %d ms", what, kTimeoutMs);
  } else {
    snprintf(buf, sizeof buf, "%s failed: %s", what,
             err == 0 ? "the peer closed the connection" : strerror(err));
  }
  peer.broken = buf;
  state.SkipWithError(peer.broken.c_str());
}

void BM_Exchange(benchmark::State& state, Mode mode) {
  if (!peer.broken.empty()) return state.SkipWithError(peer.broken.c_str());
  const size_t bytes = static_cast<size_t>(state.range(0));
  const bool pingPong = mode == Mode::kRawPingPong || mode == Mode::kGcclPingPong;
  const bool viaGccl = mode == Mode::kGcclPingPong || mode == Mode::kGcclStream;
  std::vector<uint8_t> out(bytes), in(bytes);
  fill(out);

  Command c;
  c.mode = mode;
  c.bytes = bytes;
  const uint64_t warmup = warmupCount(bytes);
  c.count = warmup + static_cast<uint64_t>(state.max_iterations);
  if (!pipeWrite(peer.cmdFd, &c, sizeof c, kTimeoutMs))
    return fail(state, "command to the peer", false);

  for (uint64_t i = 0; i < warmup; ++i) {
    if (!exchange(mode, out, in)) return fail(state, "warm-up exchange", viaGccl);
  }
  // The echo must be the message, and the ack its last byte.
  if (pingPong ? in != out : in[0] != out.back()) {
    peer.broken = "the peer's answer differs from what was sent";
    return state.SkipWithError(peer.broken.c_str());
  }

  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (!exchange(mode, out, in)) {
      fail(state, "exchange", viaGccl);
      break;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (state.error_occurred()) return;
  if (!pingPong && in[0] != out.back()) {
    peer.broken = "the peer's ack differs from the last byte sent";
    return state.SkipWithError(peer.broken.c_str());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes) * (pingPong ? 2 : 1));
  if (pingPong) {
    // Half a round trip in microseconds, averaged over the iterations.
    state.counters["one_way_us"] =
        benchmark::Counter(seconds * 1e6 / 2, benchmark::Counter::kAvgIterations);
  }
}

void pingPongSizes(benchmark::internal::Benchmark* b) {
  b->RangeMultiplier(8)->Range(8, 64 << 10)->UseRealTime();
}
void streamSizes(benchmark::internal::Benchmark* b) {
  b->RangeMultiplier(8)->Range(64 << 10, 64 << 20)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_Exchange, raw_pingpong, Mode::kRawPingPong)->Apply(pingPongSizes);
BENCHMARK_CAPTURE(BM_Exchange, gccl_pingpong, Mode::kGcclPingPong)->Apply(pingPongSizes);
BENCHMARK_CAPTURE(BM_Exchange, raw_stream, Mode::kRawStream)->Apply(streamSizes);
BENCHMARK_CAPTURE(BM_Exchange, gccl_stream, Mode::kGcclStream)->Apply(streamSizes);

// Waits for the child to exit, killing it after kReapMs. Its exit status.
int reap(pid_t pid) {
  const int64_t deadline = nowMs() + kReapMs;
  int status = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return -1;
    if (nowMs() > deadline) {
      fprintf(stderr, "tcp_bench: the echo peer did not exit; killing it\n");
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Connects the raw socket and the communicator to the child. False (with a
// message) if any step fails.
bool connectPeer(int helloFd) {
  Hello hello;
  if (!pipeRead(helloFd, &hello, sizeof hello, kTimeoutMs) || !hello.ok) {
    fprintf(stderr, "tcp_bench: the echo peer did not start\n");
    return false;
  }
  peer.rawFd = socket(AF_INET, SOCK_STREAM, 0);
  if (peer.rawFd < 0) return false;
  tuneRawSocket(peer.rawFd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(hello.port);
  if (connect(peer.rawFd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fprintf(stderr, "tcp_bench: connect to 127.0.0.1:%u: %s\n", hello.port, strerror(errno));
    return false;
  }
  if (initComm(&peer.comm, hello.id, 0) != gcclSuccess) {
    fprintf(stderr, "tcp_bench: gcclCommInitRank: %s\n", gcclGetLastError(nullptr));
    peer.comm = nullptr;
    return false;
  }
  return true;
}

}  // namespace

// Takes this binary's own flag out of argv before Google Benchmark sees it:
// --cpus=A,B runs the benchmarks (and gccl's threads) on CPU A and the echo
// peer on CPU B. Without it the scheduler places both processes, and on a
// small virtual machine latencies then depend on whether the two land on one
// CPU (a local wake-up) or two (an idle virtual CPU must be woken).
bool takeCpuFlag(int* argc, char** argv, int* parentCpu, int* childCpu) {
  int out = 1;
  bool ok = true;
  for (int i = 1; i < *argc; ++i) {
    if (strncmp(argv[i], "--cpus=", 7) == 0) {
      ok = sscanf(argv[i] + 7, "%d,%d", parentCpu, childCpu) == 2 && *parentCpu >= 0 &&
           *childCpu >= 0;
      if (!ok) fprintf(stderr, "tcp_bench: --cpus wants two CPU numbers: --cpus=0,1\n");
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  argv[out] = nullptr;
  return ok;
}

int main(int argc, char** argv) {
  // Both ranks on loopback, like the raw sockets.
  setenv("GCCL_SOCKET_IFNAME", "lo", 1);
  signal(SIGPIPE, SIG_IGN);
  int parentCpu = -1, childCpu = -1;
  if (!takeCpuFlag(&argc, argv, &parentCpu, &childCpu)) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  int cmdPipe[2], helloPipe[2];
  if (pipe(cmdPipe) != 0 || pipe(helloPipe) != 0) {
    perror("pipe");
    return 1;
  }
  fflush(stdout);
  fflush(stderr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    close(cmdPipe[1]);
    close(helloPipe[0]);
    childMain(parent, cmdPipe[0], helloPipe[1], childCpu);
  }
  close(cmdPipe[0]);
  close(helloPipe[1]);
  peer.pid = pid;
  peer.cmdFd = cmdPipe[1];

  bool ok = pinTo(parentCpu) && connectPeer(helloPipe[0]);
  close(helloPipe[0]);
  if (ok) benchmark::RunSpecifiedBenchmarks();

  // Tell the child to leave (closing the pipe says the same if this fails).
  Command bye;
  pipeWrite(peer.cmdFd, &bye, sizeof bye, 1000);
  close(peer.cmdFd);
  if (peer.rawFd >= 0) close(peer.rawFd);
  if (peer.comm != nullptr) {
    if (peer.broken.empty()) {
      gcclCommDestroy(peer.comm);
    } else {
      gcclCommAbort(peer.comm);
    }
  }
  const int childStatus = reap(pid);
  if (childStatus != 0) fprintf(stderr, "tcp_bench: the echo peer exited with %d\n", childStatus);
  benchmark::Shutdown();
  return ok && peer.broken.empty() && childStatus == 0 ? 0 : 1;
}

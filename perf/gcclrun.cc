// gcclrun: the local launcher for demos, perf tools and tests.
//
//   gcclrun -n N [-t SECONDS] [--] PROGRAM [ARGS...]
//
// Starts N copies of PROGRAM on this host with the variables torchrun would
// set (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE) plus a rendezvous
// address on loopback (GCCL_COMM_ID) and a fresh random GCCL_SECRET, so
// gcclCommInitFromEnv works unchanged. If one rank fails, the others are
// stopped and gcclrun exits with that rank's status; past the time limit
// every rank is killed and gcclrun exits with 124.
#include <netinet/in.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

void usage() {
  fprintf(stderr,
          "usage: gcclrun -n N [-t SECONDS] [--] PROGRAM [ARGS...]\n"
          "  -n N        number of ranks (1-256)\n"
          "  -t SECONDS  kill every rank after this long (default 3600)\n");
}

int freeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

std::string randomHex(size_t bytes) {
  std::vector<unsigned char> b(bytes);
  if (getrandom(b.data(), b.size(), 0) != static_cast<ssize_t>(b.size())) return "";
  std::string s;
  char h[3];
  for (unsigned char c : b) {
    snprintf(h, sizeof(h), "%02x", c);
    s += h;
  }
  return s;
}

volatile sig_atomic_t gInterrupted = 0;
void onSignal(int) {
  gInterrupted = 1;
}

void stopAll(const std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (p > 0) kill(p, SIGTERM);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (pid_t p : pids) {
    if (p <= 0) continue;
    while (waitpid(p, nullptr, WNOHANG) == 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    kill(p, SIGKILL);
    kill(p, SIGCONT);
    waitpid(p, nullptr, 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int n = 0;
  long timeoutSec = 3600;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-n" && i + 1 < argc) {
      n = atoi(argv[++i]);
    } else if (a == "-t" && i + 1 < argc) {
      timeoutSec = atol(argv[++i]);
    } else if (a == "--") {
      ++i;
      break;
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      fprintf(stderr, "gcclrun: unknown option %s\n", a.c_str());
      usage();
      return 2;
    } else {
      break;
    }
  }
  if (n < 1 || n > 256 || i >= argc || timeoutSec < 1) {
    if (n < 1 || n > 256) fprintf(stderr, "gcclrun: -n must be between 1 and 256\n");
    if (i >= argc) fprintf(stderr, "gcclrun: no program given\n");
    usage();
    return 2;
  }
  if (getenv("GCCL_COMM_ID") == nullptr) {
    int port = freeLoopbackPort();
    if (port < 0) {
      fprintf(stderr, "gcclrun: no free loopback port: %s\n", strerror(errno));
      return 1;
    }
    setenv("GCCL_COMM_ID", ("127.0.0.1:" + std::to_string(port)).c_str(), 1);
  }
  if (getenv("GCCL_SECRET") == nullptr) setenv("GCCL_SECRET", randomHex(16).c_str(), 1);
  if (getenv("GCCL_SOCKET_IFNAME") == nullptr) setenv("GCCL_SOCKET_IFNAME", "lo", 1);
  setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(n).c_str(), 1);
  setenv("TORCHELASTIC_RUN_ID", ("gcclrun-" + std::to_string(getpid())).c_str(), 1);

  signal(SIGINT, onSignal);
  signal(SIGTERM, onSignal);
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    pid_t pid = fork();
    if (pid < 0) {
      fprintf(stderr, "gcclrun: fork failed: %s\n", strerror(errno));
      stopAll(pids);
      return 1;
    }
    if (pid == 0) {
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      execvp(argv[i], argv + i);
      fprintf(stderr, "gcclrun: cannot run %s: %s\n", argv[i], strerror(errno));
      _exit(127);
    }
    pids.push_back(pid);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSec);
  int result = 0;
  size_t left = pids.size();
  while (left > 0) {
    int status = 0;
    pid_t w = waitpid(-1, &status, WNOHANG);
    if (w > 0) {
      for (auto& p : pids)
        if (p == w) p = 0;
      --left;
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (code != 0 && result == 0) {
        result = code;
        fprintf(stderr, "gcclrun: a rank ended with status %d; stopping the others\n", code);
        stopAll(pids);
        break;
      }
      continue;
    }
    if (gInterrupted) {
      stopAll(pids);
      return 130;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      fprintf(stderr, "gcclrun: time limit of %ld s reached; killing every rank\n", timeoutSec);
      stopAll(pids);
      return 124;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return result;
}

// A rank program for the gcclrun tests (test_gcclrun.cc), run under gcclrun.
//
//   gcclrun_rank --dir DIR [--fail R:CODE] [--raise R:SIGNAL] [--term-exit CODE]
//                [--ignore-term] [--grandchild] [--steal-port] [--sleep SECONDS]
//
// Every rank writes DIR/rank<R>.pid once its signal dispositions are in
// place, so the test knows the pids and that a rank is ready to be signalled.
//   --fail R:CODE    rank R exits with CODE once every rank is ready
//   --raise R:SIG    rank R dies of signal SIG once every rank is ready
//   --term-exit C    on SIGTERM, exit with C (a rank that reports it was stopped)
//   --ignore-term    ignore SIGTERM (a rank that only SIGKILL ends)
//   --grandchild     start a process that writes DIR/grandchild<R>.pid and sleeps
//   --steal-port     rank 1 tries to bind GCCL_COMM_ID's port before rank 0
//                    initializes; then all ranks run one AllReduce
//   --sleep S        how long a rank without another task lives (default 30)
//   --rejoin R       fault-tolerant PushSum: rank R dies (SIGKILL) after 5 steps;
//                    started again by gcclrun -r (GCCL_REJOIN=1) it rejoins, takes
//                    the model (gcclGossipJoin) and writes DIR/rejoined with its
//                    next step; every rank then steps up to 20 past it and
//                    checks with an AllReduce that all are in
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "gccl/gccl.h"

namespace {

int gTermExitCode = 0;
void exitOnTerm(int) {
  _exit(gTermExitCode);
}

bool writeFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = fputs(text.c_str(), f) >= 0;
  ok = fclose(f) == 0 && ok;
  return ok && rename(tmp.c_str(), path.c_str()) == 0;
}

std::string readFile(const std::string& path) {
  std::string text;
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return text;
  char buf[256];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
    text.append(buf, n);
  fclose(f);
  return text;
}

bool exists(const std::string& path) {
  return access(path.c_str(), F_OK) == 0;
}

// Files appear in a test directory within a second or two; 20 s covers a
// loaded machine. Checked every 10 ms: this is a test rank, not a hot path.
bool waitForFile(const std::string& path) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!exists(path)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool parsePair(const char* text, int* a, int* b) {
  return sscanf(text, "%d:%d", a, b) == 2;
}

void sleepSeconds(int s) {
  // A signal with a handler that returns ends the sleep early; the helper
  // has none that return, so this sleeps the whole time or dies.
  std::this_thread::sleep_for(std::chrono::seconds(s));
}

// Binds the rendezvous port with a plain socket, as an unrelated program
// would. Returns the socket, kept open (and listening) for the rank's life,
// or -1 with errno when the port is held.
int takePort(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 4) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// --rejoin R (see the top of the file).
int gossipWithARejoin(const std::string& dir, int rank, int size, int victim) {
  bool restarted = getenv("GCCL_REJOIN") != nullptr;
  gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
  cfg.faultTolerant = 1;
  cfg.timeoutMs = 4000;
  gcclComm_t comm = nullptr;
  auto fail = [&](const char* what) {
    fprintf(stderr, "rank %d%s: %s failed: %s\n", rank, restarted ? " (restarted)" : "", what,
            gcclGetLastError(comm));
    return 1;
  };
  if (gcclCommInitFromEnv(&comm, &cfg) != gcclSuccess) return fail("init");
  gcclTopology_t topo;
  if (gcclTopologyCreate(&topo, gcclTopoExponential, size, 1) != gcclSuccess)
    return fail("topology");
  float x[64];
  for (float& v : x)
    v = static_cast<float>(rank + 1);
  double w = 1.0;
  uint64_t step = 0;
  std::string marker = dir + "/rejoined";
  if (restarted) {
    if (gcclGossipJoin(x, 64, gcclFloat32, &w, &step, comm, nullptr, nullptr) != gcclSuccess)
      return fail("gcclGossipJoin");
    if (!writeFileAtomically(marker, std::to_string(step))) return 2;
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;; ++step) {
    if (rank == victim && !restarted && step == 5) raise(SIGKILL);
    if (exists(marker)) {
      uint64_t target = std::stoull(readFile(marker)) + 20;
      if (step >= target) break;
    }
    if (std::chrono::steady_clock::now() > until) return fail("waiting for the rejoin");
    if (gcclPushSum(x, 64, gcclFloat32, &w, topo, step, comm, nullptr, nullptr) != gcclSuccess)
      return fail("gcclPushSum");
  }
  float v = 1;
  if (gcclAllReduce(&v, &v, 1, gcclFloat32, gcclSum, comm, nullptr, nullptr) != gcclSuccess)
    return fail("AllReduce after the rejoin");
  if (v != static_cast<float>(size)) {
    fprintf(stderr, "rank %d: the AllReduce after the rejoin gave %g, not %d\n", rank, v, size);
    return 1;
  }
  gcclTopologyDestroy(topo);
  gcclCommDestroy(comm);
  return 0;
}

int allReduceOnce(int rank, int size) {
  gcclComm_t comm = nullptr;
  if (gcclCommInitFromEnv(&comm, nullptr) != gcclSuccess) {
    fprintf(stderr, "rank %d: init failed: %s\n", rank, gcclGetLastError(nullptr));
    return 1;
  }
  float v = static_cast<float>(rank + 1);
  gcclResult_t r = gcclAllReduce(&v, &v, 1, gcclFloat32, gcclSum, comm, nullptr, nullptr);
  if (r != gcclSuccess) {
    fprintf(stderr, "rank %d: AllReduce failed: %s\n", rank, gcclGetLastError(comm));
    return 1;
  }
  gcclCommDestroy(comm);
  float want = static_cast<float>(size * (size + 1) / 2);
  if (v != want) {
    fprintf(stderr, "rank %d: AllReduce gave %g, expected %g\n", rank, v, want);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int failRank = -1, failCode = 0, raiseRank = -1, raiseSig = 0, sleepSec = 30, rejoinRank = -1;
  bool termExit = false, ignoreTerm = false, grandchild = false, stealPort = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool hasValue = i + 1 < argc;
    if (a == "--dir" && hasValue) {
      dir = argv[++i];
    } else if (a == "--fail" && hasValue && parsePair(argv[i + 1], &failRank, &failCode)) {
      ++i;
    } else if (a == "--raise" && hasValue && parsePair(argv[i + 1], &raiseRank, &raiseSig)) {
      ++i;
    } else if (a == "--term-exit" && hasValue) {
      termExit = true;
      gTermExitCode = atoi(argv[++i]);
    } else if (a == "--ignore-term") {
      ignoreTerm = true;
    } else if (a == "--grandchild") {
      grandchild = true;
    } else if (a == "--steal-port") {
      stealPort = true;
    } else if (a == "--sleep" && hasValue) {
      sleepSec = atoi(argv[++i]);
    } else if (a == "--rejoin" && hasValue) {
      rejoinRank = atoi(argv[++i]);
    } else {
      fprintf(stderr, "gcclrun_rank: bad argument %s\n", a.c_str());
      return 2;
    }
  }
  const char* rankText = getenv("RANK");
  const char* sizeText = getenv("WORLD_SIZE");
  if (dir.empty() || rankText == nullptr || sizeText == nullptr) {
    fprintf(stderr, "gcclrun_rank: needs --dir and RANK, WORLD_SIZE (run it under gcclrun)\n");
    return 2;
  }
  int rank = atoi(rankText), size = atoi(sizeText);

  if (grandchild) {
    pid_t pid = fork();
    if (pid == 0) {
      writeFileAtomically(dir + "/grandchild" + std::to_string(rank) + ".pid",
                          std::to_string(getpid()));
      sleepSeconds(sleepSec);
      _exit(0);
    }
    if (pid < 0 || !waitForFile(dir + "/grandchild" + std::to_string(rank) + ".pid")) return 2;
  }
  if (termExit) signal(SIGTERM, exitOnTerm);
  if (ignoreTerm) signal(SIGTERM, SIG_IGN);
  if (!writeFileAtomically(dir + "/rank" + std::to_string(rank) + ".pid", std::to_string(getpid())))
    return 2;

  if (rejoinRank >= 0) return gossipWithARejoin(dir, rank, size, rejoinRank);

  if (rank == failRank || rank == raiseRank) {
    for (int r = 0; r < size; ++r)
      if (!waitForFile(dir + "/rank" + std::to_string(r) + ".pid")) return 2;
    if (rank == failRank) return failCode;
    signal(raiseSig, SIG_DFL);
    raise(raiseSig);
    return 2;  // only if the signal does not end the process
  }

  if (stealPort) {
    std::string marker = dir + "/probed";
    if (rank == 1) {
      const char* id = getenv("GCCL_COMM_ID");
      const char* colon = id != nullptr ? strrchr(id, ':') : nullptr;
      if (colon == nullptr) return 2;
      int port = atoi(colon + 1);
      if (takePort(port) >= 0)
        fprintf(stderr, "rank 1: took the rendezvous port %d before rank 0 served it\n", port);
      else
        fprintf(stderr, "rank 1: could not take the rendezvous port %d: %s\n", port,
                strerror(errno));
      if (!writeFileAtomically(marker, "")) return 2;
    } else if (rank == 0 && !waitForFile(marker)) {
      return 2;
    }
    return allReduceOnce(rank, size);
  }

  sleepSeconds(sleepSec);
  return 0;
}

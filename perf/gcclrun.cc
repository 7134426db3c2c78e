// gcclrun: the local launcher for demos, perf tools and tests.
//
//   gcclrun -n N [-t SECONDS] [-g SECONDS] [--] PROGRAM [ARGS...]
//
// Starts N copies of PROGRAM on this host with the variables torchrun would
// set (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE) plus a rendezvous
// address on loopback (GCCL_COMM_ID) and a fresh random GCCL_SECRET, so
// gcclCommInitFromEnv works unchanged. usage() below states what happens when
// a rank fails, when gcclrun is signalled and when the time limit passes.
//
// gcclrun stays single-threaded: PR_SET_PDEATHSIG fires when the thread that
// forked a child exits, so a helper thread doing the forking would kill the
// ranks early.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr long kDefaultGraceSec = 3;
// After SIGKILL a rank normally vanishes at once; one stuck in uninterruptible
// I/O may not. gcclrun reports it and exits rather than wait without end.
constexpr int kReapAfterKillSec = 10;

void usage() {
  fprintf(stderr,
          "usage: gcclrun -n N [-t SECONDS] [-g SECONDS] [-f N] [-r N] [--] PROGRAM [ARGS...]\n"
          "  -n N        number of ranks (1-256)\n"
          "  -t SECONDS  time limit; past it every rank is stopped and gcclrun exits 124\n"
          "              (default 3600)\n"
          "  -g SECONDS  grace between SIGTERM and SIGKILL when stopping ranks (default %ld)\n"
          "  -f N        up to N ranks may fail without stopping the others (jobs in gccl's\n"
          "              fault-tolerant mode, GCCL_FAULT_TOLERANT=1): each such failure is\n"
          "              reported and the job goes on; a further one stops the job as below;\n"
          "              gcclrun exits 0 when every other rank succeeds (default 0)\n"
          "  -r N        restart up to N failed ranks in all (fault-tolerant jobs): a rank\n"
          "              other than 0 that fails is started again, with GCCL_REJOIN=1, so\n"
          "              that gcclCommInitFromEnv rejoins the running job; rank 0 serves the\n"
          "              rendezvous and is not restarted. Failures beyond N are handled as\n"
          "              above (default 0)\n"
          "\n"
          "Each rank gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GCCL_COMM_ID (a\n"
          "loopback port that rank 0 inherits already bound, so nothing can take it\n"
          "first), a fresh GCCL_SECRET and GCCL_SOCKET_IFNAME=lo, unless already set.\n"
          "\n"
          "When a rank exits non-zero or dies of a signal, gcclrun names it (rank, pid,\n"
          "exit code or signal) and stops the others: SIGTERM at once, SIGKILL after the\n"
          "grace. Every rank that ends badly is listed, the first failure first, and\n"
          "gcclrun exits with the first failing rank's code (128+N for signal N).\n"
          "\n"
          "SIGINT, SIGTERM and SIGHUP sent to gcclrun are forwarded to the ranks' process\n"
          "group (ranks and anything they start), SIGKILL follows after the grace, and\n"
          "gcclrun exits 128+signal; a second such signal sends SIGKILL at once. If\n"
          "gcclrun itself is killed, its ranks get SIGKILL from the kernel. When stdin is\n"
          "a terminal, ranks read /dev/null instead (they run in a background group).\n",
          kDefaultGraceSec);
}

bool parseSeconds(const char* text, long min, long max, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || v < min || v > max) return false;
  *out = v;
  return true;
}

// Binds a free loopback port and listens on it. The socket is handed to rank 0
// (GCCL_ROOT_LISTEN_FD), which serves the rendezvous on it: the port stays
// held from the moment it is chosen, where probing it and closing the probe
// would leave a window for another process to take it before rank 0 binds.
int listenOnFreeLoopbackPort(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, SOMAXCONN) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
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

std::string signalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  std::string name = abbrev != nullptr ? std::string("SIG") + abbrev : "signal";
  return name + " (" + std::to_string(sig) + ")";
}

// Signals gcclrun passes on to its ranks.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP};

// A handler is installed only so that a blocked SIGCHLD is kept pending for
// sigtimedwait whatever disposition gcclrun inherited; it never runs.
void unusedHandler(int) {}

struct Rank {
  int index;
  pid_t pid;
  bool running;
};

// Everything a child needs between fork and exec.
struct ChildSetup {
  pid_t parent;
  pid_t group;  // 0 for the first rank, which founds the group
  sigset_t mask;
  struct sigaction saved[4];  // dispositions of kForwarded and SIGCHLD before gcclrun's
  bool stdinIsTerminal;
  int rootFd;  // passed to rank 0 only; -1 when GCCL_COMM_ID came from the caller
};

// `restart`: the rank is started again after it failed (-r): it rejoins.
[[noreturn]] void runRank(const ChildSetup& c, int rank, char** argv, bool restart = false) {
  // A group of their own lets gcclrun signal every process of the job,
  // including ones the ranks start, and keeps a terminal's Ctrl-C from
  // reaching the ranks directly: gcclrun forwards it and enforces the grace.
  setpgid(0, c.group);
  // If gcclrun dies, even by SIGKILL, the kernel kills this rank. Had gcclrun
  // died before this call, nothing would fire: the parent check closes that gap.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    fprintf(stderr, "gcclrun: rank %d: prctl(PR_SET_PDEATHSIG) failed: %s\n", rank,
            strerror(errno));
    _exit(127);
  }
  if (getppid() != c.parent) _exit(127);
  for (size_t k = 0; k < 3; ++k)
    sigaction(kForwarded[k], &c.saved[k], nullptr);
  sigaction(SIGCHLD, &c.saved[3], nullptr);
  sigprocmask(SIG_SETMASK, &c.mask, nullptr);
  if (c.stdinIsTerminal) {
    // A background group reading the terminal would be stopped by SIGTTIN.
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != STDIN_FILENO) {
      dup2(null, STDIN_FILENO);
      close(null);
    }
  }
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  if (restart) setenv("GCCL_REJOIN", "1", 1);
  if (rank == 0 && c.rootFd >= 0 && !restart) {
    fcntl(c.rootFd, F_SETFD, 0);  // survive exec
    setenv("GCCL_ROOT_LISTEN_FD", std::to_string(c.rootFd).c_str(), 1);
  }
  execvp(argv[0], argv);
  fprintf(stderr, "gcclrun: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

class Job {
 public:
  Job(pid_t group, std::vector<Rank> ranks, long graceSec, long tolerate, long restarts,
      const ChildSetup& setup, char** argv)
      : group_(group),
        ranks_(std::move(ranks)),
        graceSec_(graceSec),
        tolerate_(tolerate),
        restarts_(restarts),
        setup_(setup),
        argv_(argv) {}

  // Waits for every rank and returns gcclrun's exit status.
  int wait(const sigset_t& waitSet, Clock::time_point timeLimit, long timeoutSec) {
    while (running() > 0) {
      Clock::time_point wake = timeLimit;
      if (stopping_) wake = killed_ ? giveUpAt_ : killAt_;
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - Clock::now());
      if (left.count() < 0) left = std::chrono::nanoseconds(0);
      timespec ts{static_cast<time_t>(left.count() / 1000000000),
                  static_cast<long>(left.count() % 1000000000)};
      siginfo_t info;
      int sig = sigtimedwait(&waitSet, &info, &ts);
      if (sig == SIGCHLD) {
        reap();
      } else if (sig > 0) {
        interrupted(sig);
      } else if (errno == EAGAIN) {
        // A deadline passed; reap first in case a SIGCHLD raced with it.
        reap();
        if (running() == 0) break;
        Clock::time_point now = Clock::now();
        if (!stopping_ && now >= timeLimit) {
          fprintf(stderr, "gcclrun: time limit of %ld s reached; still running: %s\n", timeoutSec,
                  runningList().c_str());
          result_ = 124;
          stop();
        } else if (stopping_ && !killed_ && now >= killAt_) {
          fprintf(stderr, "gcclrun: still running %ld s after %s: %s; sending SIGKILL\n", graceSec_,
                  signalName(sent_).c_str(), runningList().c_str());
          kill();
        } else if (killed_ && now >= giveUpAt_) {
          fprintf(stderr, "gcclrun: still not gone %d s after SIGKILL: %s; exiting anyway\n",
                  kReapAfterKillSec, runningList().c_str());
          break;
        }
      }
    }
    if (!firstFailure_.empty())
      fprintf(stderr, "gcclrun: exiting with status %d: %s was the first to fail\n", result_,
              firstFailure_.c_str());
    return result_;
  }

 private:
  size_t running() const {
    size_t n = 0;
    for (const Rank& r : ranks_)
      n += r.running ? 1 : 0;
    return n;
  }

  std::string runningList() const {
    std::string s;
    for (const Rank& r : ranks_)
      if (r.running)
        s += (s.empty() ? "rank " : ", rank ") + std::to_string(r.index) + " (pid " +
             std::to_string(r.pid) + ")";
    return s;
  }

  // Signals every process of the job. The group reaches what the ranks
  // started; a rank that left the group is signalled by pid. Only unreaped
  // ranks are signalled, so neither the pids nor the group can have been
  // reused by another process.
  void signalAll(int sig) {
    if (running() == 0) return;
    ::kill(-group_, sig);
    for (const Rank& r : ranks_)
      if (r.running && getpgid(r.pid) != group_) ::kill(r.pid, sig);
  }

  // SIGTERM now, SIGKILL after the grace; stopped ranks are continued so that
  // they can act on the SIGTERM.
  void stop(int sig = SIGTERM) {
    stopping_ = true;
    sent_ = sig;
    killAt_ = Clock::now() + std::chrono::seconds(graceSec_);
    signalAll(sig);
    signalAll(SIGCONT);
  }

  void kill() {
    killed_ = true;
    giveUpAt_ = Clock::now() + std::chrono::seconds(kReapAfterKillSec);
    signalAll(SIGKILL);
  }

  void interrupted(int sig) {
    if (stopping_) {
      if (!killed_) {
        fprintf(stderr, "gcclrun: got %s while stopping the ranks; sending SIGKILL to %s\n",
                signalName(sig).c_str(), runningList().c_str());
        kill();
      }
      return;
    }
    fprintf(stderr, "gcclrun: got %s; forwarding it to %s (SIGKILL after %ld s)\n",
            signalName(sig).c_str(), runningList().c_str(), graceSec_);
    result_ = 128 + sig;
    stop(sig);
  }

  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (Rank& r : ranks_)
        if (r.running && r.pid == pid) {
          r.running = false;
          ended(r, status);
          break;
        }
    }
  }

  // -r: starts rank `r` again; false when fork failed.
  bool restart(Rank& r) {
    ChildSetup c = setup_;
    c.group = group_;
    c.rootFd = -1;
    pid_t pid = fork();
    if (pid < 0) {
      fprintf(stderr, "gcclrun: cannot restart rank %d: fork failed: %s\n", r.index,
              strerror(errno));
      return false;
    }
    if (pid == 0) runRank(c, r.index, argv_, true);
    setpgid(pid, group_);
    r.pid = pid;
    r.running = true;
    return true;
  }

  void ended(Rank& r, int status) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    std::string who = "rank " + std::to_string(r.index) + " (pid " + std::to_string(r.pid) + ")";
    std::string how;
    int code = 0;
    if (WIFEXITED(status)) {
      code = WEXITSTATUS(status);
      how = "exited with code " + std::to_string(code);
    } else {
      int sig = WTERMSIG(status);
      code = 128 + sig;
      how = "was killed by " + signalName(sig);
      if (WCOREDUMP(status)) how += ", core dumped";
      if (stopping_ && (sig == sent_ || (killed_ && sig == SIGKILL))) how += ", sent by gcclrun";
    }
    if (stopping_) {
      fprintf(stderr, "gcclrun: %s %s\n", who.c_str(), how.c_str());
      return;
    }
    if (restarted_ < restarts_ && r.index != 0) {
      ++restarted_;
      pid_t old = r.pid;
      if (restart(r)) {
        fprintf(stderr,
                "gcclrun: %s %s; restarted it as pid %d to rejoin (restart %ld of %ld, -r)\n",
                who.c_str(), how.c_str(), static_cast<int>(r.pid), restarted_, restarts_);
        return;
      }
      r.pid = old;
    }
    if (tolerated_ < tolerate_) {
      ++tolerated_;
      fprintf(stderr, "gcclrun: %s %s; the others go on (failure %ld of %ld tolerated, -f)\n",
              who.c_str(), how.c_str(), tolerated_, tolerate_);
      return;
    }
    firstFailure_ = who;
    result_ = code;
    fprintf(stderr, "gcclrun: %s %s\n", who.c_str(), how.c_str());
    if (running() > 0) {
      fprintf(stderr, "gcclrun: stopping %s: SIGTERM now, SIGKILL after %ld s\n",
              runningList().c_str(), graceSec_);
      stop();
    }
  }

  pid_t group_;
  std::vector<Rank> ranks_;
  long graceSec_;
  long tolerate_;
  long tolerated_ = 0;
  long restarts_;
  long restarted_ = 0;
  ChildSetup setup_;
  char** argv_;
  int result_ = 0;
  std::string firstFailure_;
  bool stopping_ = false;
  bool killed_ = false;
  int sent_ = 0;
  Clock::time_point killAt_ = Clock::time_point::max();
  Clock::time_point giveUpAt_ = Clock::time_point::max();
};

}  // namespace

int main(int argc, char** argv) {
  long n = 0;
  long timeoutSec = 3600;
  long graceSec = kDefaultGraceSec;
  long tolerate = 0;
  long restarts = 0;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-n" && i + 1 < argc) {
      if (!parseSeconds(argv[++i], 1, 256, &n)) {
        fprintf(stderr, "gcclrun: -n must be between 1 and 256\n");
        return 2;
      }
    } else if (a == "-t" && i + 1 < argc) {
      if (!parseSeconds(argv[++i], 1, INT_MAX, &timeoutSec)) {
        fprintf(stderr, "gcclrun: -t must be a whole number of seconds, at least 1\n");
        return 2;
      }
    } else if (a == "-g" && i + 1 < argc) {
      if (!parseSeconds(argv[++i], 0, 3600, &graceSec)) {
        fprintf(stderr, "gcclrun: -g must be a whole number of seconds from 0 to 3600\n");
        return 2;
      }
    } else if (a == "-f" && i + 1 < argc) {
      if (!parseSeconds(argv[++i], 0, 255, &tolerate)) {
        fprintf(stderr, "gcclrun: -f must be a number of ranks from 0 to 255\n");
        return 2;
      }
    } else if (a == "-r" && i + 1 < argc) {
      if (!parseSeconds(argv[++i], 0, 1000, &restarts)) {
        fprintf(stderr, "gcclrun: -r must be a number of restarts from 0 to 1000\n");
        return 2;
      }
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
  if (n < 1 || i >= argc) {
    if (n < 1) fprintf(stderr, "gcclrun: -n must be between 1 and 256\n");
    if (i >= argc) fprintf(stderr, "gcclrun: no program given\n");
    usage();
    return 2;
  }

  ChildSetup setup{};
  setup.rootFd = -1;
  // One inherited from an enclosing job names a socket that is not ours.
  unsetenv("GCCL_ROOT_LISTEN_FD");
  if (getenv("GCCL_COMM_ID") == nullptr) {
    int port = 0;
    setup.rootFd = listenOnFreeLoopbackPort(&port);
    if (setup.rootFd < 0) {
      fprintf(stderr, "gcclrun: cannot listen on a loopback port: %s\n", strerror(errno));
      return 1;
    }
    setenv("GCCL_COMM_ID", ("127.0.0.1:" + std::to_string(port)).c_str(), 1);
  }
  if (getenv("GCCL_SECRET") == nullptr) setenv("GCCL_SECRET", randomHex(16).c_str(), 1);
  if (getenv("GCCL_SOCKET_IFNAME") == nullptr) setenv("GCCL_SOCKET_IFNAME", "lo", 1);
  setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(n).c_str(), 1);
  setenv("TORCHELASTIC_RUN_ID", ("gcclrun-" + std::to_string(getpid())).c_str(), 1);

  // Blocked from before the first fork, so that no child's exit and no
  // signal to gcclrun can slip between two waits; sigtimedwait takes them.
  sigset_t waitSet;
  sigemptyset(&waitSet);
  sigaddset(&waitSet, SIGCHLD);
  struct sigaction act {};
  act.sa_handler = unusedHandler;
  sigemptyset(&act.sa_mask);
  for (size_t k = 0; k < 3; ++k) {
    sigaddset(&waitSet, kForwarded[k]);
    sigaction(kForwarded[k], &act, &setup.saved[k]);
  }
  sigaction(SIGCHLD, &act, &setup.saved[3]);
  sigprocmask(SIG_BLOCK, &waitSet, &setup.mask);
  setup.parent = getpid();
  setup.stdinIsTerminal = isatty(STDIN_FILENO) != 0;

  std::vector<Rank> ranks;
  pid_t group = 0;
  for (int r = 0; r < n; ++r) {
    setup.group = group;
    pid_t pid = fork();
    if (pid < 0) {
      fprintf(stderr, "gcclrun: fork failed: %s\n", strerror(errno));
      if (group != 0) {
        kill(-group, SIGKILL);
        for (const Rank& k : ranks)
          waitpid(k.pid, nullptr, 0);  // SIGKILL cannot be caught: these return
      }
      return 1;
    }
    if (pid == 0) runRank(setup, r, argv + i);
    if (group == 0) group = pid;
    // The child does the same; whichever runs first wins, so the group is
    // complete before any signal is sent to it.
    setpgid(pid, group);
    ranks.push_back({r, pid, true});
  }
  // Rank 0 owns the rendezvous socket now. A copy left open here would keep
  // accepting connections into its queue after rank 0 is done with it.
  if (setup.rootFd >= 0) close(setup.rootFd);

  Job job(group, std::move(ranks), graceSec, tolerate, restarts, setup, argv + i);
  return job.wait(waitSet, Clock::now() + std::chrono::seconds(timeoutSec), timeoutSec);
}

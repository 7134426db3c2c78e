// gcclrun (perf/gcclrun.cc) as its users meet it: which rank failed and how,
// what its exit status says, what becomes of the ranks when gcclrun is
// signalled or killed, and that the rendezvous port cannot be taken from it.
// The ranks are gcclrun_rank (tests/launcher/gcclrun_rank.cc).
//
// This process makes itself a child subreaper, so that ranks orphaned by a
// killed gcclrun become its children: it can then wait for their deaths (with
// a pidfd) and reap them instead of leaving them to whatever init it has.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int pidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

// Whether the process behind `pidfd` ends within `ms` (it may stay a zombie).
bool endsWithin(int pidfd, int ms) {
  pollfd p{pidfd, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class GcclrunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << strerror(errno);
    const char* tmp = getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/gcclrun-test-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    ASSERT_NE(mkdtemp(buf.data()), nullptr) << strerror(errno);
    dir_ = buf.data();
  }

  // Whatever a failed test left running is killed, and every child reaped.
  void TearDown() override {
    for (int fd : watched_) {
      syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
      close(fd);
    }
    if (gcclrun_ > 0) {
      kill(gcclrun_, SIGKILL);
      waitpid(gcclrun_, nullptr, 0);
    }
    // Killed processes end promptly; the deadline only guards a stuck one.
    auto until = Clock::now() + std::chrono::seconds(5);
    while (waitpid(-1, nullptr, WNOHANG) >= 0 && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (DIR* d = opendir(dir_.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') unlink((dir_ + "/" + e->d_name).c_str());
      closedir(d);
    }
    rmdir(dir_.c_str());
  }

  // Starts `gcclrun <options> gcclrun_rank --dir DIR <rankArgs>`, its stdout
  // and stderr going to DIR/out.
  void start(const std::vector<std::string>& options, const std::vector<std::string>& rankArgs) {
    std::vector<std::string> all{GCCLRUN_PATH};
    all.insert(all.end(), options.begin(), options.end());
    all.insert(all.end(), {HELPER_PATH, "--dir", dir_});
    all.insert(all.end(), rankArgs.begin(), rankArgs.end());
    std::vector<char*> argv;
    for (auto& a : all)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::string out = dir_ + "/out";
    gcclrun_ = fork();
    ASSERT_GE(gcclrun_, 0) << strerror(errno);
    if (gcclrun_ == 0) {
      int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0) _exit(120);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      unsetenv("GCCL_COMM_ID");  // gcclrun must choose the port itself
      execv(argv[0], argv.data());
      _exit(121);
    }
  }

  // gcclrun's exit status (128+N if signal N ended it), or -1 if it is
  // still running after `sec` seconds.
  int waitGcclrun(int sec) {
    if (gcclrun_ > 0) {
      int fd = pidfdOpen(gcclrun_);
      if (fd < 0) return -1;
      bool ended = endsWithin(fd, sec * 1000);
      close(fd);
      if (!ended || !reapGcclrun(0)) return -1;
    }
    return status_;
  }

  // Reaps gcclrun if it has ended (flags: 0 or WNOHANG), keeping its status.
  bool reapGcclrun(int flags) {
    int status = 0;
    if (waitpid(gcclrun_, &status, flags) != gcclrun_) return false;
    gcclrun_ = 0;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  // The pid a rank (or grandchild) wrote, waiting up to 15 s for the file;
  // a pidfd for it is kept so that TearDown can kill it.
  pid_t pidOf(const std::string& name, int* pidfd = nullptr) {
    std::string path = dir_ + "/" + name + ".pid";
    auto until = Clock::now() + std::chrono::seconds(15);
    while (access(path.c_str(), F_OK) != 0) {
      // A gcclrun that has exited starts no more ranks.
      if (Clock::now() > until || gcclrun_ == 0 || reapGcclrun(WNOHANG)) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_t pid = static_cast<pid_t>(atoi(readFile(path).c_str()));
    int fd = pid > 0 ? pidfdOpen(pid) : -1;
    if (fd >= 0) watched_.push_back(fd);
    if (pidfd != nullptr) *pidfd = fd;
    return pid;
  }

  std::string output() { return readFile(dir_ + "/out"); }

  // gcclrun's own lines that name a rank, in order.
  std::vector<std::string> rankLines() {
    std::vector<std::string> lines;
    std::stringstream s(output());
    std::string line;
    while (std::getline(s, line))
      if (line.rfind("gcclrun: rank ", 0) == 0) lines.push_back(line);
    return lines;
  }

  std::string dir_;
  pid_t gcclrun_ = 0;
  int status_ = -1;  // gcclrun's, once reaped
  std::vector<int> watched_;
};

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string named(int rank, pid_t pid) {
  return "rank " + std::to_string(rank) + " (pid " + std::to_string(pid) + ")";
}

TEST_F(GcclrunTest, NamesTheFailingRankAndExitsWithItsCode) {
  start({"-n", "3", "-t", "60"}, {"--fail", "1:3"});
  pid_t failed = pidOf("rank1");
  ASSERT_GT(failed, 0) << output();
  // The other ranks sleep 30 s: gcclrun must stop them, not wait for them.
  EXPECT_EQ(waitGcclrun(15), 3) << output();
  std::vector<std::string> lines = rankLines();
  ASSERT_FALSE(lines.empty()) << output();
  EXPECT_TRUE(contains(lines[0], named(1, failed) + " exited with code 3")) << output();
}

TEST_F(GcclrunTest, ListsEveryFailingRankWithTheFirstFailureFirst) {
  // Ranks 0 and 2 exit with 7 when gcclrun stops them: failures of their own.
  start({"-n", "3", "-t", "60"}, {"--fail", "1:3", "--term-exit", "7"});
  pid_t p0 = pidOf("rank0"), p1 = pidOf("rank1"), p2 = pidOf("rank2");
  ASSERT_TRUE(p0 > 0 && p1 > 0 && p2 > 0) << output();
  EXPECT_EQ(waitGcclrun(15), 3) << output();
  std::vector<std::string> lines = rankLines();
  ASSERT_EQ(lines.size(), 3u) << output();
  EXPECT_TRUE(contains(lines[0], named(1, p1) + " exited with code 3")) << output();
  std::string rest = lines[1] + "\n" + lines[2];
  EXPECT_TRUE(contains(rest, named(0, p0) + " exited with code 7")) << output();
  EXPECT_TRUE(contains(rest, named(2, p2) + " exited with code 7")) << output();
}

TEST_F(GcclrunTest, NamesTheSignalThatKilledARank) {
  start({"-n", "3", "-t", "60"}, {"--raise", "2:" + std::to_string(SIGUSR1)});
  pid_t failed = pidOf("rank2");
  ASSERT_GT(failed, 0) << output();
  EXPECT_EQ(waitGcclrun(15), 128 + SIGUSR1) << output();
  std::vector<std::string> lines = rankLines();
  ASSERT_FALSE(lines.empty()) << output();
  EXPECT_TRUE(contains(lines[0], named(2, failed) + " was killed by SIGUSR1")) << output();
}

// -f: a fault-tolerant job goes on without a rank that died; one failure
// more than allowed stops it as usual.
TEST_F(GcclrunTest, ToleratesAsManyFailuresAsAskedAndNoMore) {
  start({"-n", "3", "-t", "60", "-f", "1"},
        {"--raise", "2:" + std::to_string(SIGKILL), "--sleep", "2"});
  pid_t failed = pidOf("rank2");
  ASSERT_GT(failed, 0) << output();
  EXPECT_EQ(waitGcclrun(20), 0) << output();
  EXPECT_TRUE(contains(output(), named(2, failed) + " was killed by SIGKILL (9); the others go "
                                                    "on (failure 1 of 1 tolerated, -f)"))
      << output();
}

// -r: a rank of a fault-tolerant job that dies is started again with
// GCCL_REJOIN=1; the new process rejoins, takes the model and trains on,
// and in the end every rank, the restarted one included, is in.
TEST_F(GcclrunTest, RestartsAFailedRankThatRejoinsTheRunningJob) {
  start({"-n", "3", "-t", "90", "-r", "1"}, {"--rejoin", "2"});
  EXPECT_EQ(waitGcclrun(60), 0) << output();
  EXPECT_TRUE(contains(output(), "was killed by SIGKILL (9); restarted it as pid")) << output();
  EXPECT_TRUE(contains(output(), "to rejoin (restart 1 of 1, -r)")) << output();
}

// Rank 0 serves the rendezvous a restarted rank needs: it is not restarted.
TEST_F(GcclrunTest, DoesNotRestartRankZero) {
  start({"-n", "3", "-t", "60", "-r", "1"}, {"--fail", "0:3"});
  EXPECT_EQ(waitGcclrun(15), 3) << output();
  EXPECT_FALSE(contains(output(), "restarted it")) << output();
}

TEST_F(GcclrunTest, StopsTheJobAtTheFirstFailureBeyondTheTolerance) {
  start({"-n", "3", "-t", "60", "-f", "0"}, {"--fail", "1:3"});
  ASSERT_GT(pidOf("rank1"), 0) << output();
  EXPECT_EQ(waitGcclrun(15), 3) << output();
}

TEST_F(GcclrunTest, KillsRanksThatIgnoreSigtermAfterTheGrace) {
  // The default grace, 3 s: the ranks get that long after SIGTERM, no longer.
  start({"-n", "3", "-t", "60"}, {"--fail", "0:4", "--ignore-term"});
  auto begin = Clock::now();
  pid_t p1 = pidOf("rank1"), p2 = pidOf("rank2");
  ASSERT_TRUE(p1 > 0 && p2 > 0) << output();
  EXPECT_EQ(waitGcclrun(20), 4) << output();
  auto took = Clock::now() - begin;
  EXPECT_GE(took, std::chrono::milliseconds(2900)) << output();
  EXPECT_LT(took, std::chrono::seconds(15)) << output();
  std::string out = output();
  EXPECT_TRUE(contains(out, named(1, p1) + " was killed by SIGKILL (9), sent by gcclrun")) << out;
  EXPECT_TRUE(contains(out, named(2, p2) + " was killed by SIGKILL (9), sent by gcclrun")) << out;
}

TEST_F(GcclrunTest, RanksDieWhenGcclrunIsKilled) {
  start({"-n", "3", "-t", "60"}, {});
  int fds[3];
  for (int r = 0; r < 3; ++r)
    ASSERT_GT(pidOf("rank" + std::to_string(r), &fds[r]), 0) << output();
  ASSERT_EQ(kill(gcclrun_, SIGKILL), 0);
  ASSERT_EQ(waitGcclrun(10), 128 + SIGKILL);
  for (int r = 0; r < 3; ++r)
    EXPECT_TRUE(endsWithin(fds[r], 3000)) << "rank " << r << " outlived gcclrun's SIGKILL";
}

TEST_F(GcclrunTest, ForwardsSigtermToRanksAndWhatTheyStarted) {
  start({"-n", "2", "-t", "60"}, {"--grandchild"});
  int fds[2];
  for (int r = 0; r < 2; ++r) {
    ASSERT_GT(pidOf("rank" + std::to_string(r)), 0) << output();
    ASSERT_GT(pidOf("grandchild" + std::to_string(r), &fds[r]), 0) << output();
  }
  ASSERT_EQ(kill(gcclrun_, SIGTERM), 0);
  EXPECT_EQ(waitGcclrun(15), 128 + SIGTERM) << output();
  EXPECT_TRUE(contains(output(), "got SIGTERM")) << output();
  for (int r = 0; r < 2; ++r)
    EXPECT_TRUE(endsWithin(fds[r], 3000)) << "rank " << r << "'s child outlived gcclrun";
}

TEST_F(GcclrunTest, ForwardsSigintAsSigint) {
  start({"-n", "2", "-t", "60"}, {});
  pid_t p0 = pidOf("rank0"), p1 = pidOf("rank1");
  ASSERT_TRUE(p0 > 0 && p1 > 0) << output();
  ASSERT_EQ(kill(gcclrun_, SIGINT), 0);
  EXPECT_EQ(waitGcclrun(15), 128 + SIGINT) << output();
  std::string out = output();
  EXPECT_TRUE(contains(out, named(0, p0) + " was killed by SIGINT (2), sent by gcclrun")) << out;
  EXPECT_TRUE(contains(out, named(1, p1) + " was killed by SIGINT (2), sent by gcclrun")) << out;
}

// Rank 1 tries to bind the rendezvous port (as any program could) after
// gcclrun chose it and before rank 0 starts serving it. The port must already
// be held, and the job must run.
TEST_F(GcclrunTest, RendezvousPortCannotBeTakenBeforeRankZeroServesIt) {
  start({"-n", "2", "-t", "60"}, {"--steal-port"});
  EXPECT_EQ(waitGcclrun(30), 0) << output();
  EXPECT_TRUE(contains(output(), "rank 1: could not take the rendezvous port")) << output();
}

}  // namespace

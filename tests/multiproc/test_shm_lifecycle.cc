// The shared-memory transport's life around the data path, between forked
// processes (shm_pair.h): liveness answers with the peer's report, the
// goodbye (data written before it still arrives), the abort notice, a peer
// killed with SIGKILL (an error naming it within a second, no hang),
// nothing left in /dev/shm, in the abstract socket namespace or in the fd
// table after a normal exit, a SIGKILL or an abort, single-copy reads that
// the kernel refuses between different users (the rings carry the data
// instead), and reachability: same boot id, network namespace and user only.
#include <gtest/gtest.h>

#include <dirent.h>
#include <grp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include <cerrno>
#include <cinttypes>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "multiproc/shm_pair.h"

namespace gccl::shm::test {
namespace {

std::set<std::string> devShmEntries() {
  std::set<std::string> names;
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') names.insert(e->d_name);
    closedir(d);
  }
  return names;
}

// Abstract unix sockets of the communicator `hash` still bound anywhere.
int abstractSocketsOf(uint64_t hash) {
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "@gccl-shm-%016" PRIx64, hash);
  std::ifstream in("/proc/net/unix");
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.find(prefix) != std::string::npos) ++n;
  return n;
}

std::string outcomeText(const std::vector<RankOutcome>& outcomes) {
  std::string why;
  gccl::test::allSucceeded(outcomes, &why);
  return why;
}

TEST(ShmLifecycle, PingIsAnsweredWithTheLivenessReportAndGoodbyeKeepsWrittenData) {
  auto outcomes = runShmPair([](PairRank& me) {
    if (me.rank == 1) {
      RANK_OK(me.waitFlag(0));  // answers the ping meanwhile
      uint8_t msg[3][32];
      Request reqs[3];
      for (int i = 0; i < 3; ++i) {
        fillRandom(msg[i], sizeof(msg[i]), 40 + i);
        RANK_OK(me.conn->isend(msg[i], sizeof(msg[i]), 40 + i, MessageMeta{}, &reqs[i]));
        RANK_CHECK(reqs[i].done(), "a small send did not complete in the ring");
      }
      me.conn->sendCloseNotice();
      RANK_CHECK(me.teardownLeavesNoFds(), "descriptors left open after a normal close");
      return 0;
    }
    RANK_CHECK(me.conn->lastPongMs() == 0, "a pong before any ping");
    RANK_OK(me.conn->sendPing());
    RANK_OK(me.driveUntil([&] { return me.conn->lastPongMs() != 0; }, 10000));
    RANK_CHECK(me.conn->peerLivenessReport() == "report of rank 1", "the pong carried '%s'",
               me.conn->peerLivenessReport().c_str());
    me.setFlag(0);
    // The goodbye, then the peer's exit: no error while nothing is expected.
    RANK_OK(me.driveUntil([&] { return me.conn->peerClosed(); }, 10000));
    usleep(100000);
    RANK_OK(me.driveUntil([] { return false; }, 100) == gcclTimeout ? gcclSuccess
                                                                    : gcclSystemError);
    // What it wrote before leaving is still in the rings.
    for (int i = 0; i < 3; ++i) {
      uint8_t got[32], expect[32];
      fillRandom(expect, sizeof(expect), 40 + i);
      Request req;
      RANK_OK(me.conn->irecv(got, sizeof(got), 40 + i, MessageMeta{}, &req));
      RANK_OK(me.waitFor(req));
      RANK_CHECK(req.done() && memcmp(got, expect, sizeof(got)) == 0, "message %d after goodbye",
                 i);
    }
    // Anything more can never come.
    uint8_t buf[8];
    Request req;
    gcclResult_t r = me.conn->irecv(buf, sizeof(buf), 99, MessageMeta{}, &req);
    std::string text = threadLastError();
    if (r == gcclSuccess) {
      r = me.waitFor(req, 5000);
      text = me.error;
    }
    RANK_CHECK(r == gcclRemoteError && text.find("rank 1 destroyed its communicator") == 0,
               "a receive after the peer left: %s: %s", gcclGetErrorString(r), text.c_str());
    RANK_CHECK(me.teardownLeavesNoFds(), "descriptors left open after the peer's goodbye");
    return 0;
  });
  EXPECT_EQ(outcomeText(outcomes), "");
}

TEST(ShmLifecycle, AbortNoticeCarriesTheReason) {
  auto outcomes = runShmPair([](PairRank& me) {
    if (me.rank == 1) {
      me.conn->sendAbortNotice("rank 1 gave up: out of patience");
      (void)me.waitFlag(0);  // success, or the error of rank 0's departure
      return 0;
    }
    uint8_t buf[8];
    Request req;
    RANK_OK(me.conn->irecv(buf, sizeof(buf), 1, MessageMeta{}, &req));
    gcclResult_t r = me.waitFor(req, 10000);
    me.setFlag(0);
    RANK_CHECK(r == gcclRemoteError &&
                   me.error == "rank 1 aborted: rank 1 gave up: out of patience" &&
                   me.conn->peerAbortReason() == "rank 1 gave up: out of patience",
               "%s: %s", gcclGetErrorString(r), me.error.c_str());
    return 0;
  });
  EXPECT_EQ(outcomeText(outcomes), "");
}

enum class Ending { kNormal, kKilled, kAborted };

// Rank 1 ends in the given way while rank 0 waits for a message from it;
// then nothing may be left behind, and rank 0 must have been told at once.
void endAndCheckLeftovers(Ending ending) {
  std::set<std::string> before = devShmEntries();
  PairBoard* board = nullptr;
  auto outcomes = runShmPair(
      [ending](PairRank& me) {
        std::vector<uint8_t> data(8 << 20);
        if (me.rank == 1) {
          fillRandom(data.data(), data.size(), 3);
          Request req;  // single copy: waits for rank 0 to read it
          RANK_OK(me.conn->isend(data.data(), data.size(), 1, MessageMeta{}, &req));
          RANK_OK(me.waitFor(req));
          Request last;
          RANK_OK(me.conn->isend(data.data(), data.size(), 2, MessageMeta{}, &last));
          me.setFlag(0);
          if (ending == Ending::kNormal) {
            RANK_OK(me.waitFor(last));
            me.conn->sendCloseNotice();
            RANK_CHECK(me.teardownLeavesNoFds(), "descriptors left open after a normal exit");
            return 0;
          }
          if (ending == Ending::kAborted) {
            rlimit none{0, 0};
            setrlimit(RLIMIT_CORE, &none);
            abort();
          }
          for (;;)
            pause();  // until the parent's SIGKILL
        }
        Request req;
        RANK_OK(me.conn->irecv(data.data(), data.size(), 1, MessageMeta{}, &req));
        RANK_OK(me.waitFor(req));
        if (ending == Ending::kNormal) {
          Request last;
          RANK_OK(me.conn->irecv(data.data(), data.size(), 2, MessageMeta{}, &last));
          RANK_OK(me.waitFor(last));
          RANK_OK(me.driveUntil([&] { return me.conn->peerClosed(); }, 10000));
        } else {
          // Rank 1 ends with a single-copy send outstanding, while this
          // rank waits for a message that never comes: an error, no hang.
          uint8_t probe[8];
          Request never;
          RANK_OK(me.conn->irecv(probe, sizeof(probe), 77, MessageMeta{}, &never));
          gcclResult_t r = me.waitFor(never, 20000);
          me.board->stamps[1].store(nowMsForTest());
          RANK_CHECK(r == gcclRemoteError && me.error.find("rank 1") != std::string::npos,
                     "rank 1's death: %s: %s", gcclGetErrorString(r), me.error.c_str());
        }
        RANK_CHECK(me.teardownLeavesNoFds(), "descriptors left open after rank 1 ended");
        return 0;
      },
      PairOptions(), &board,
      [ending](PairBoard* b, const std::vector<int>& pids) {
        if (ending != Ending::kKilled) return;
        int64_t deadline = nowMsForTest() + 30000;
        while (b->flags[0].load() == 0 && nowMsForTest() < deadline)
          usleep(1000);
        usleep(20000);  // let rank 0 go back to sleep on its fds
        b->stamps[0].store(nowMsForTest());
        kill(pids[1], SIGKILL);
      });
  EXPECT_EQ(outcomes[0].exitCode, 0) << outcomeText(outcomes);
  if (ending == Ending::kNormal) {
    EXPECT_EQ(outcomes[1].exitCode, 0);
  }
  if (ending == Ending::kKilled) {
    EXPECT_EQ(outcomes[1].signal, SIGKILL);
    int64_t noticed = board->stamps[1].load() - board->stamps[0].load();
    EXPECT_LT(noticed, 1000) << "the SIGKILL was noticed after " << noticed << " ms";
  }
  if (ending == Ending::kAborted) {
    EXPECT_EQ(outcomes[1].signal, SIGABRT);
  }
  EXPECT_EQ(devShmEntries(), before) << "/dev/shm changed";
  EXPECT_EQ(abstractSocketsOf(board->commHash), 0) << "an abstract socket is still bound";
}

TEST(ShmLifecycle, NothingLeftBehindAfterANormalExit) {
  endAndCheckLeftovers(Ending::kNormal);
}

TEST(ShmLifecycle, PeerKilledIsAnErrorNamingItWithinASecond) {
  endAndCheckLeftovers(Ending::kKilled);
}

TEST(ShmLifecycle, NothingLeftBehindAfterAnAbort) {
  endAndCheckLeftovers(Ending::kAborted);
}

// Real EPERM: rank 1 keeps the effective uid of rank 0 (so the transport
// accepts it) but another real uid, and neither keeps any capability, so the
// kernel refuses process_vm_readv both ways; the data goes through the rings.
TEST(ShmLifecycle, SingleCopyRefusedBetweenUsersFallsBackToTheRings) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run the ranks as other users";
  PairOptions opt;
  opt.beforeTransport = [](int rank) {
    uid_t real = rank == 0 ? 65534 : 65533;
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(real, 65534, 65534) != 0) {
      perror("dropping privileges");
      return false;
    }
    return true;
  };
  auto outcomes = runShmPair(
      [](PairRank& me) {
        int other = 1 - me.rank;
        uint8_t word[8];
        iovec local{word, sizeof(word)};
        iovec remote{me.board, sizeof(word)};  // mapped before the fork: there in both
        ssize_t n = process_vm_readv(me.board->pid[other].load(), &local, 1, &remote, 1, 0);
        RANK_CHECK(n < 0 && errno == EPERM, "process_vm_readv across users: %zd (%s)", n,
                   strerror(errno));
        RANK_CHECK(!me.shm()->singleCopyToPeer(), "the handshake still offers single copy");
        for (size_t n : {size_t{100} << 10, (size_t{8} << 20) + 5}) {
          std::vector<uint8_t> out(n), in(n), expect(n);
          fillRandom(out.data(), n, n + static_cast<size_t>(me.rank));
          fillRandom(expect.data(), n, n + static_cast<size_t>(other));
          Request s, r;
          RANK_OK(me.conn->irecv(in.data(), n, n, MessageMeta{}, &r));
          RANK_OK(me.conn->isend(out.data(), n, n, MessageMeta{}, &s));
          RANK_OK(me.driveUntil([&] { return s.done() && r.done(); }, 20000));
          RANK_CHECK(memcmp(in.data(), expect.data(), n) == 0, "%zu bytes arrived changed", n);
        }
        // Neither leaves (which the other would see as a death) before both are done.
        me.setFlag(me.rank);
        RANK_OK(me.waitFlag(other));
        return 0;
      },
      opt);
  EXPECT_EQ(outcomeText(outcomes), "");
}

// Someone on the abstract socket who does not know the secret is turned
// away (and told nothing); the real peer still connects.
TEST(ShmLifecycle, AStrangerWithoutTheSecretIsRejected) {
  PairOptions opt;
  opt.beforeConnect = [](int rank, const Address& other) {
    if (rank == 0) return true;
    HandshakeConfig cfg;
    cfg.rank = 1;
    cfg.commHash = other.commHash;
    uint8_t wrong[32] = {42};
    cfg.secret = wrong;
    Endpoint ep;
    gcclResult_t r = connectToPeer(cfg, 0, socketName(other), nowMsForTest() + 10000, &ep);
    std::string text = threadLastError();
    if (r == gcclSuccess || ep.base != nullptr ||
        text.find("same unique id") == std::string::npos) {
      fprintf(stderr, "the stranger got %s: %s\n", gcclGetErrorString(r), text.c_str());
      return false;
    }
    return true;
  };
  auto outcomes = runShmPair(
      [](PairRank& me) {
        uint64_t word = 0x1234, got = 0;
        Request s, r;
        RANK_OK(me.conn->irecv(&got, sizeof(got), 1, MessageMeta{}, &r));
        RANK_OK(me.conn->isend(&word, sizeof(word), 1, MessageMeta{}, &s));
        RANK_OK(me.driveUntil([&] { return s.done() && r.done(); }, 10000));
        RANK_CHECK(got == word, "got %llx", static_cast<unsigned long long>(got));
        me.setFlag(me.rank);
        RANK_OK(me.waitFlag(1 - me.rank));
        return 0;
      },
      opt);
  EXPECT_EQ(outcomeText(outcomes), "");
}

TEST(ShmReach, OnlyTheSameBootIdNetworkNamespaceAndUser) {
  EpollPoller poller("");
  transport::TransportContext ctx;
  ctx.nranks = 2;
  ctx.commHash = 0x5eed;
  ctx.poller = &poller;
  ShmTransport shm(ctx, ShmTuning());
  std::string mine;
  ASSERT_EQ(shm.listen(&mine), gcclSuccess) << threadLastError();
  Address a;
  ASSERT_TRUE(decodeAddress(mine, &a));
  auto edited = [&](const std::function<void(Address&)>& edit) {
    Address b = a;
    edit(b);
    return encodeAddress(b);
  };
  EXPECT_TRUE(shm.canReach(mine, mine));
  // Another IPC namespace alone does not matter: the memory travels as a descriptor.
  EXPECT_TRUE(shm.canReach(mine, edited([](Address& b) { b.host.ipcIno ^= 1; })));
  EXPECT_TRUE(shm.canReach(mine, edited([](Address& b) { b.rank = 1; })));
  std::string other[] = {
      edited([](Address& b) { b.host.bootId[3] ^= 1; }),
      edited([](Address& b) { b.host.netIno ^= 1; }),
      edited([](Address& b) { b.host.netDev ^= 1; }),
      edited([](Address& b) { b.host.uid ^= 1; }),
  };
  for (const std::string& theirs : other) {
    EXPECT_FALSE(shm.canReach(mine, theirs));
    EXPECT_FALSE(shm.canReach(theirs, mine));
  }
  EXPECT_FALSE(shm.canReach(mine, ""));
  EXPECT_FALSE(shm.canReach(mine, std::string(mine.size(), 'x')));
  EXPECT_FALSE(shm.canReach(mine, mine.substr(1)));
}

// A rank in a network namespace of its own (a container on this host) gets
// TCP, not shared memory, and a connect attempt fails at once.
TEST(ShmReach, AnotherNetworkNamespaceIsNotReachable) {
  if (geteuid() != 0) GTEST_SKIP() << "unshare(CLONE_NEWNET) needs root";
  struct Box {
    uint32_t len;
    char blob[transport::kMaxAddressBlobBytes];
  };
  gccl::test::SharedArea area(sizeof(Box));
  Box* box = area.as<Box>();
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(77);
    EpollPoller poller("");
    transport::TransportContext ctx;
    ctx.rank = 1;
    ctx.nranks = 2;
    ctx.commHash = 0x5eed;
    ctx.poller = &poller;
    ShmTransport shm(ctx, ShmTuning());
    std::string blob;
    if (shm.listen(&blob) != gcclSuccess) _exit(1);
    memcpy(box->blob, blob.data(), blob.size());
    box->len = static_cast<uint32_t>(blob.size());
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
    GTEST_SKIP() << "unshare(CLONE_NEWNET) is not allowed here";
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EpollPoller poller("");
  transport::TransportContext ctx;
  ctx.nranks = 2;
  ctx.commHash = 0x5eed;
  ctx.poller = &poller;
  ShmTransport shm(ctx, ShmTuning());
  std::string mine;
  ASSERT_EQ(shm.listen(&mine), gcclSuccess) << threadLastError();
  std::string theirs(box->blob, box->len);
  EXPECT_FALSE(shm.canReach(mine, theirs));
  EXPECT_FALSE(shm.canReach(theirs, mine));
  std::vector<std::unique_ptr<Connection>> conns;
  int64_t start = nowMsForTest();
  EXPECT_EQ(shm.connect({1}, {mine, theirs}, start + 10000, &conns), gcclInvalidUsage);
  EXPECT_LT(nowMsForTest() - start, 1000);
  EXPECT_NE(std::string(threadLastError()).find("rank 1"), std::string::npos) << threadLastError();
}

}  // namespace
}  // namespace gccl::shm::test

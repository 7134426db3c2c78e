// A restarted rank rejoining a running communicator over TCP
// (TcpTransport::rejoin, the LateListener's admission of restarted ranks,
// Registry::rejoin): three ranks of one process connect as a communicator
// does, rank 1 comes back as a fresh transport (incarnation 1) and connects
// to the others, whose listeners hand the new connections over; messages then
// flow both ways. A member that is gone is skipped quickly, a listener
// without acceptRejoins turns the rank away (and says so), and a set of
// sockets that never completes is dropped.
#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/check.h"
#include "base/clock.h"
#include "base/log.h"
#include "transports/registry.h"
#include "transports/tcp/tcp_mesh.h"
#include "transports/tcp/tcp_transport.h"

namespace gccl::tcp {
namespace {

using transport::Arrival;
using transport::Connection;
using transport::Listener;
using transport::MessageMeta;
using transport::Request;

constexpr int kRanks = 3;
constexpr uint64_t kHash = 0x7e57ab1e7e57ab1eull;

// The engine's part for every rank at once: one epoll set, each event handed
// to the connection that registered the fd (the owner, a TcpConnection).
class SharedPoller final : public transport::Poller {
 public:
  SharedPoller() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~SharedPoller() override { close(ep_); }
  gcclResult_t watch(int fd, uint32_t events, void* owner) override {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    owners_[fd] = static_cast<TcpConnection*>(owner);
    if (epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev) == 0) return gcclSuccess;
    if (errno == ENOENT && epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0) return gcclSuccess;
    return setError(gcclSystemError, "epoll_ctl(%d): %s", fd, strerror(errno));
  }
  void unwatch(int fd) override {
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    owners_.erase(fd);
  }

  // Moves every registered connection until done() or waitMs passed.
  gcclResult_t drive(const std::function<bool()>& done, int64_t waitMs) {
    int64_t deadline = nowMs() + waitMs;
    while (!done()) {
      if (nowMs() > deadline)
        return setError(gcclTimeout, "nothing finished in %lld ms", static_cast<long long>(waitMs));
      epoll_event evs[32];
      int n = epoll_wait(ep_, evs, 32, 5);
      for (int i = 0; i < n; ++i) {
        auto it = owners_.find(evs[i].data.fd);
        if (it != owners_.end()) GCCL_CHECK(it->second->onEvents(evs[i].data.fd, evs[i].events));
      }
    }
    return gcclSuccess;
  }

 private:
  int ep_;
  std::map<int, TcpConnection*> owners_;
};

// Every WARN and INFO line, for the tests that look for one.
std::mutex gLogMutex;
std::vector<std::string> gLog;
void captureLog(LogLevel, uint32_t, const char*, int, const char* msg) {
  std::lock_guard<std::mutex> lock(gLogMutex);
  gLog.emplace_back(msg);
}
bool logged(const std::string& text) {
  std::lock_guard<std::mutex> lock(gLogMutex);
  for (const std::string& line : gLog)
    if (line.find(text) != std::string::npos) return true;
  return false;
}

transport::TransportContext contextOf(int rank, transport::Poller* poller) {
  transport::TransportContext ctx;
  ctx.rank = rank;
  ctx.nranks = kRanks;
  ctx.commHash = kHash;
  for (size_t i = 0; i < sizeof(ctx.secret); ++i)
    ctx.secret[i] = static_cast<uint8_t>(i * 5 + 3);
  ctx.poller = poller;
  return ctx;
}

TcpOptions optionsFor(bool acceptRejoins) {
  TcpOptions o;
  o.ifname = "lo";
  o.acceptRejoins = acceptRejoins;
  o.helloTimeoutMs = 1000;  // also how long an incomplete set may wait
  return o;
}

// One rank of the running communicator.
struct Member {
  std::unique_ptr<TcpTransport> transport;
  std::vector<std::unique_ptr<Connection>> conns;
  std::unique_ptr<Listener> listener;
};

class TcpRejoin : public ::testing::Test {
 protected:
  void SetUp() override {
    setLogSink(captureLog, kLogInfo);
    std::lock_guard<std::mutex> lock(gLogMutex);
    gLog.clear();
  }
  void TearDown() override { setLogSink(nullptr, kLogNone); }

  // Builds the communicator: every rank connects to every other, as
  // Registry::connect does (each from a thread: connect blocks).
  void build(bool acceptRejoins) {
    members_.resize(kRanks);
    blobs_.assign(kRanks, "");
    for (int r = 0; r < kRanks; ++r) {
      members_[r].transport =
          std::make_unique<TcpTransport>(contextOf(r, &poller_), optionsFor(acceptRejoins));
      ASSERT_EQ(members_[r].transport->listen(&blobs_[r]), gcclSuccess) << threadLastError();
    }
    std::vector<std::thread> threads;
    std::vector<gcclResult_t> results(kRanks, gcclInternalError);
    for (int r = 0; r < kRanks; ++r)
      threads.emplace_back([&, r] {
        std::vector<int> peers;
        for (int p = 0; p < kRanks; ++p)
          if (p != r) peers.push_back(p);
        members_[r].conns.resize(kRanks);
        results[r] =
            members_[r].transport->connect(peers, blobs_, nowMs() + 20000, &members_[r].conns);
      });
    for (auto& t : threads)
      t.join();
    for (int r = 0; r < kRanks; ++r) {
      ASSERT_EQ(results[r], gcclSuccess) << "rank " << r;
      members_[r].listener = members_[r].transport->takeListener();
      ASSERT_NE(members_[r].listener, nullptr);
    }
  }

  // Rank 1 exits: its connections, listener and transport go away.
  void killRank1() { members_[1] = Member(); }

  // Polls the listeners of `ranks` until each handed over a connection or
  // `waitMs` passed.
  void pollListeners(const std::vector<int>& ranks, int64_t waitMs,
                     std::vector<Arrival>* arrivals) {
    arrivals->resize(kRanks);
    int64_t deadline = nowMs() + waitMs;
    while (nowMs() < deadline) {
      bool all = true;
      for (int r : ranks) {
        members_[r].listener->poll();
        Arrival a;
        if (members_[r].listener->takeArrival(&a)) (*arrivals)[r] = std::move(a);
        all = all && (*arrivals)[r].conn != nullptr;
      }
      if (all) return;
      usleep(2000);
    }
  }

  // A message each way between the member's arrival and the rejoined rank's
  // connection to it.
  void exchange(Connection* member, Connection* rejoined, const std::string& name) {
    std::string toRejoined = "from member " + name, toMember = "from the restarted rank";
    std::vector<char> gotByRejoined(64), gotByMember(64);
    Request s1, r1, s2, r2;
    MessageMeta meta{1, 2};
    ASSERT_EQ(member->isend(toRejoined.data(), toRejoined.size(), 7, meta, &s1), gcclSuccess);
    ASSERT_EQ(rejoined->irecv(gotByRejoined.data(), gotByRejoined.size(), 7, meta, &r1),
              gcclSuccess);
    ASSERT_EQ(rejoined->isend(toMember.data(), toMember.size(), 8, meta, &s2), gcclSuccess);
    ASSERT_EQ(member->irecv(gotByMember.data(), gotByMember.size(), 8, meta, &r2), gcclSuccess);
    ASSERT_EQ(poller_.drive(
                  [&] { return !s1.pending() && !r1.pending() && !s2.pending() && !r2.pending(); },
                  10000),
              gcclSuccess)
        << threadLastError();
    ASSERT_TRUE(s1.done() && r1.done() && s2.done() && r2.done());
    EXPECT_EQ(std::string(gotByRejoined.data(), r1.bytes), toRejoined);
    EXPECT_EQ(std::string(gotByMember.data(), r2.bytes), toMember);
  }

  SharedPoller poller_;
  std::vector<Member> members_;
  std::vector<std::string> blobs_;
};

TEST_F(TcpRejoin, RestartedRankConnectsAndTrafficFlowsBothWays) {
  ASSERT_NO_FATAL_FAILURE(build(true));
  killRank1();
  TcpTransport fresh(contextOf(1, &poller_), optionsFor(true));
  ASSERT_EQ(fresh.listen(&blobs_[1]), gcclSuccess) << threadLastError();
  std::vector<std::unique_ptr<Connection>> out;
  gcclResult_t result = gcclInternalError;
  std::thread rejoiner([&] {
    result = fresh.rejoin({0, 2}, blobs_, 1, 3000, nowMs() + 10000, &out);
  });
  std::vector<Arrival> arrivals;
  pollListeners({0, 2}, 10000, &arrivals);
  rejoiner.join();
  ASSERT_EQ(result, gcclSuccess) << threadLastError();
  ASSERT_EQ(out.size(), static_cast<size_t>(kRanks));
  for (int r : {0, 2}) {
    ASSERT_NE(arrivals[r].conn, nullptr) << "rank " << r << " got no connection";
    EXPECT_EQ(arrivals[r].peer, 1);
    EXPECT_EQ(arrivals[r].incarnation, 1u);
    ASSERT_NE(out[r], nullptr) << "no connection to rank " << r;
    EXPECT_EQ(out[r]->peer(), r);
    ASSERT_EQ(arrivals[r].conn->start(), gcclSuccess) << threadLastError();
    ASSERT_EQ(out[r]->start(), gcclSuccess) << threadLastError();
    exchange(arrivals[r].conn.get(), out[r].get(), std::to_string(r));
  }
  EXPECT_TRUE(logged("restarted rank 1 (incarnation 1) connected"));
}

TEST_F(TcpRejoin, GoneMemberIsLeftNullQuickly) {
  ASSERT_NO_FATAL_FAILURE(build(true));
  killRank1();
  members_[2] = Member();  // rank 2 is gone too: nobody listens at its address
  TcpTransport fresh(contextOf(1, &poller_), optionsFor(true));
  ASSERT_EQ(fresh.listen(&blobs_[1]), gcclSuccess) << threadLastError();
  std::vector<std::unique_ptr<Connection>> out;
  gcclResult_t result = gcclInternalError;
  int64_t start = nowMs();
  std::thread rejoiner([&] {
    result = fresh.rejoin({0, 2}, blobs_, 1, 3000, nowMs() + 10000, &out);
  });
  std::vector<Arrival> arrivals;
  pollListeners({0}, 10000, &arrivals);
  rejoiner.join();
  ASSERT_EQ(result, gcclSuccess) << threadLastError();
  EXPECT_LT(nowMs() - start, 2000) << "a refused peer held the rejoin up";
  EXPECT_NE(out[0], nullptr);
  EXPECT_EQ(out[2], nullptr);
  EXPECT_NE(arrivals[0].conn, nullptr);
  EXPECT_TRUE(logged("cannot reach rank 2")) << "the skipped peer is not logged";
}

TEST_F(TcpRejoin, WithoutAcceptRejoinsNothingArrives) {
  ASSERT_NO_FATAL_FAILURE(build(false));
  killRank1();
  TcpTransport fresh(contextOf(1, &poller_), optionsFor(false));
  ASSERT_EQ(fresh.listen(&blobs_[1]), gcclSuccess) << threadLastError();
  std::vector<std::unique_ptr<Connection>> out;
  gcclResult_t result = gcclInternalError;
  std::thread rejoiner([&] {
    result = fresh.rejoin({0, 2}, blobs_, 1, 2000, nowMs() + 5000, &out);
  });
  std::vector<Arrival> arrivals;
  pollListeners({0, 2}, 1500, &arrivals);
  rejoiner.join();
  EXPECT_EQ(result, gcclSuccess) << threadLastError();
  EXPECT_EQ(arrivals[0].conn, nullptr);
  EXPECT_EQ(arrivals[2].conn, nullptr);
  EXPECT_TRUE(logged("takes connections only while it is built"));
  // The restarted rank notices the members hang up and leaves them out.
  EXPECT_EQ(out[0], nullptr);
  EXPECT_EQ(out[2], nullptr);
}

// One socket of three arrives: after the set's time it is dropped, nothing
// is handed over; a newer incarnation replaces an incomplete set, and an
// older one than what connected is refused.
TEST_F(TcpRejoin, IncompleteSetIsDroppedAndNewerIncarnationsWin) {
  ASSERT_NO_FATAL_FAILURE(build(true));
  killRank1();
  SockAddr addr0;
  ASSERT_EQ(decodeSockAddr(reinterpret_cast<const uint8_t*>(blobs_[0].data()), &addr0),
            gcclSuccess);
  transport::TransportContext ctx = contextOf(1, &poller_);
  Credentials creds;
  creds.commHash = ctx.commHash;
  memcpy(creds.secret, ctx.secret, sizeof(creds.secret));
  // Opens socket `index` of `count` for `incarnation`, while rank 0 polls.
  auto openOne = [&](int index, int count, uint32_t incarnation, int* fd) {
    HelloInfo hello;
    hello.purpose = Purpose::kRejoin;
    hello.fromRank = 1;
    hello.toRank = 0;
    hello.channel = rejoinChannel(index, count, incarnation);
    gcclResult_t r = gcclInternalError;
    std::thread t([&] { r = connectOne(addr0, creds, hello, nowMs() + 5000, fd); });
    int64_t until = nowMs() + 300;
    while (nowMs() < until)
      members_[0].listener->poll();
    t.join();
    ASSERT_EQ(r, gcclSuccess) << threadLastError();
  };

  int lone = -1;
  ASSERT_NO_FATAL_FAILURE(openOne(0, 3, 1, &lone));
  int64_t until = nowMs() + 2000;
  Arrival a;
  bool arrived = false;
  while (nowMs() < until && !logged("dropped the 1 of 3 socket(s) restarted rank 1")) {
    members_[0].listener->poll();
    arrived = arrived || members_[0].listener->takeArrival(&a);
    usleep(2000);
  }
  EXPECT_TRUE(logged("dropped the 1 of 3 socket(s) restarted rank 1 (incarnation 1)"));
  EXPECT_FALSE(arrived);
  // Its socket was closed: the far end reads the end of the stream.
  char c;
  EXPECT_EQ(recv(lone, &c, 1, 0), 0);
  close(lone);

  // Incarnation 1 starts again, incarnation 2 comes in full and replaces it.
  ASSERT_NO_FATAL_FAILURE(openOne(0, 3, 1, &lone));
  TcpTransport fresh(contextOf(1, &poller_), optionsFor(true));
  std::vector<std::unique_ptr<Connection>> out;
  gcclResult_t result = gcclInternalError;
  std::thread rejoiner([&] { result = fresh.rejoin({0}, blobs_, 2, 3000, nowMs() + 5000, &out); });
  std::vector<Arrival> arrivals;
  pollListeners({0}, 5000, &arrivals);
  rejoiner.join();
  ASSERT_EQ(result, gcclSuccess) << threadLastError();
  ASSERT_NE(arrivals[0].conn, nullptr);
  EXPECT_EQ(arrivals[0].incarnation, 2u);
  EXPECT_TRUE(logged("incarnation 2 of that rank replaces it"));
  close(lone);

  // A socket of incarnation 2 again, or of 1, is turned away.
  int late = -1;
  ASSERT_NO_FATAL_FAILURE(openOne(0, 3, 2, &late));
  EXPECT_TRUE(logged("stale or duplicate rejoin hello (rank 1 -> 0, incarnation 2"));
  close(late);
}

// Registry::rejoin: the restarted rank's registry connects over tcp and says so.
TEST_F(TcpRejoin, RegistryRejoinsOverTcp) {
  // The members' blobs must be registry blobs: build them through registries.
  std::vector<std::unique_ptr<transport::Registry>> regs(kRanks);
  std::vector<std::vector<std::unique_ptr<Connection>>> conns(kRanks);
  std::vector<std::vector<std::unique_ptr<Listener>>> listeners(kRanks);
  std::vector<std::string> blobs(kRanks);
  auto optionsOf = [&](int r) {
    transport::RegistryOptions ro;
    ro.ctx = contextOf(r, &poller_);
    ro.preference = "tcp";
    ro.tcp = optionsFor(true);
    return ro;
  };
  for (int r = 0; r < kRanks; ++r) {
    regs[r] = std::make_unique<transport::Registry>(optionsOf(r));
    ASSERT_EQ(regs[r]->open(&blobs[r]), gcclSuccess) << threadLastError();
  }
  std::vector<std::thread> threads;
  std::vector<gcclResult_t> results(kRanks, gcclInternalError);
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] {
      results[r] = regs[r]->connect(blobs, nowMs() + 20000, &conns[r], &listeners[r]);
    });
  for (auto& t : threads)
    t.join();
  for (int r = 0; r < kRanks; ++r)
    ASSERT_EQ(results[r], gcclSuccess) << "rank " << r;
  ASSERT_EQ(listeners[0].size(), 1u);
  ASSERT_EQ(listeners[2].size(), 1u);
  regs[1].reset();
  conns[1].clear();
  listeners[1].clear();

  transport::Registry fresh(optionsOf(1));
  ASSERT_EQ(fresh.open(&blobs[1]), gcclSuccess) << threadLastError();
  std::vector<std::unique_ptr<Connection>> out;
  std::vector<std::unique_ptr<Listener>> freshListeners;
  gcclResult_t result = gcclInternalError;
  std::thread rejoiner(
      [&] { result = fresh.rejoin(blobs, 1, 3000, nowMs() + 10000, &out, &freshListeners); });
  // Kept: a connection dropped here would close its sockets under the
  // restarted rank, which would then leave that member out.
  std::vector<Arrival> arrivals(kRanks);
  std::vector<bool> got(kRanks, false);
  int64_t deadline = nowMs() + 10000;
  while (nowMs() < deadline && !(got[0] && got[2])) {
    for (int r : {0, 2}) {
      listeners[r][0]->poll();
      if (listeners[r][0]->takeArrival(&arrivals[r]))
        got[r] = arrivals[r].peer == 1 && arrivals[r].incarnation == 1;
    }
    usleep(2000);
  }
  rejoiner.join();
  ASSERT_EQ(result, gcclSuccess) << threadLastError();
  EXPECT_TRUE(got[0] && got[2]);
  EXPECT_NE(out[0], nullptr);
  EXPECT_NE(out[2], nullptr);
  EXPECT_EQ(fresh.chosen()[0], "tcp");
  EXPECT_EQ(fresh.chosen()[1], "self");
  EXPECT_EQ(fresh.chosen()[2], "tcp");
  EXPECT_EQ(freshListeners.size(), 1u);
}

TEST(TcpRejoinErrors, TransportsOtherThanTcpCannotRejoin) {
  transport::RegistryOptions ro;
  ro.ctx.rank = 0;
  ro.ctx.nranks = 2;
  ro.preference = "shm";
  transport::Registry reg(ro);
  std::string blob;
  if (reg.open(&blob) != gcclSuccess) GTEST_SKIP() << "shm cannot run here: " << threadLastError();
  std::vector<std::unique_ptr<Connection>> out;
  std::vector<std::unique_ptr<Listener>> listeners;
  EXPECT_EQ(reg.rejoin({blob, blob}, 1, 1000, nowMs() + 1000, &out, &listeners), gcclInvalidUsage);
  EXPECT_NE(std::string(threadLastError()).find("rejoins over tcp"), std::string::npos)
      << threadLastError();
  EXPECT_EQ(reg.find("shm")->rejoin({1}, {blob, blob}, 1, 1000, nowMs() + 1000, &out),
            gcclInvalidUsage);
  EXPECT_NE(
      std::string(threadLastError()).find("transport shm cannot rejoin a running communicator"),
      std::string::npos)
      << threadLastError();
}

}  // namespace
}  // namespace gccl::tcp

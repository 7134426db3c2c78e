// Conformance of libnccl-net-gccl.so, driven the way NCCL's proxy drives a
// net plugin: the library is dlopen'ed (RTLD_NOW | RTLD_LOCAL) and each
// version's table, v12 down to v6, is exercised through its own signatures
// (nccl_net_loader.h) across 2 to 4 processes that pass listen handles to
// each other as NCCL's bootstrap would.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "common/multiproc.h"
#include "common/run_ranks.h"
#include "plugin/nccl_net_loader.h"

namespace gccl::test {
namespace {

constexpr int kMaxRanks = 4;
constexpr int64_t kStepDeadlineMs = 20000;  // any single wait of a rank

// What NCCL's bootstrap would carry: the handle rank `from` listens with,
// for rank `to`, and a flag once it is there.
struct Board {
  std::atomic<int> posted[kMaxRanks][kMaxRanks];
  uint8_t handle[kMaxRanks][kMaxRanks][NCCL_NET_HANDLE_MAXSIZE];
  std::atomic<int> flags[16];
};

Board* newBoard(SharedArea* area) {
  auto* b = area->as<Board>();
  memset(static_cast<void*>(b), 0, sizeof(Board));
  return b;
}

uint8_t patternByte(uint64_t seed, size_t i) {
  uint64_t x = (seed + 1) * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
  return static_cast<uint8_t>((x >> 29) ^ (x >> 47));
}
void fill(std::vector<uint8_t>* buf, size_t n, uint64_t seed) {
  if (buf->size() < n) buf->resize(n);
  for (size_t i = 0; i < n; ++i)
    (*buf)[i] = patternByte(seed, i);
}
bool matches(const std::vector<uint8_t>& buf, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; ++i)
    if (buf[i] != patternByte(seed, i)) return false;
  return true;
}

// A rank's plugin, loaded and initialized as NCCL does, in the child.
struct Rank {
  LoadedPlugin lib;
  NetApi* net = nullptr;
  explicit Rank(int version) : lib(GCCL_NCCL_NET_PLUGIN_PATH, version), net(lib.api()) {}
  bool init() { return net != nullptr && net->init(captureLog) == ncclSuccess; }
};

// Waits for one request as the proxy does (test until done), with a deadline.
ncclResult_t waitRequest(NetApi* net, void* req, int* sizes, int64_t deadlineMs = 0) {
  if (deadlineMs == 0) deadlineMs = nowMs() + kStepDeadlineMs;
  for (;;) {
    int done = 0;
    ncclResult_t r = net->test(req, &done, sizes);
    if (r != ncclSuccess || done) return r;
    if (nowMs() > deadlineMs) return ncclInProgress;
  }
}

// Connects rank `me` to `sendTo` and accepts from `recvFrom` in one thread,
// alternating connect and accept calls until both return a comm, as NCCL's
// proxy does; neither call may block, or two ranks connecting to each other
// would wait forever.
int connectRing(NetApi* net, Board* b, int me, int sendTo, int recvFrom, void** sendComm,
                void** recvComm, void** listenComm) {
  uint8_t mine[NCCL_NET_HANDLE_MAXSIZE] = {};
  RANK_CHECK(net->listen(0, mine, listenComm) == ncclSuccess, "listen failed");
  memcpy(b->handle[me][recvFrom], mine, sizeof(mine));
  b->posted[me][recvFrom].store(1);
  int64_t deadline = nowMs() + kStepDeadlineMs;
  while (b->posted[sendTo][me].load() == 0) {
    RANK_CHECK(nowMs() < deadline, "rank %d never posted its handle", sendTo);
    usleep(200);
  }
  uint8_t theirs[NCCL_NET_HANDLE_MAXSIZE];
  memcpy(theirs, b->handle[sendTo][me], sizeof(theirs));
  *sendComm = *recvComm = nullptr;
  while (*sendComm == nullptr || *recvComm == nullptr) {
    RANK_CHECK(nowMs() < deadline, "connect %s, accept %s after %lld ms",
               *sendComm ? "done" : "pending", *recvComm ? "done" : "pending",
               static_cast<long long>(kStepDeadlineMs));
    if (*sendComm == nullptr)
      RANK_CHECK(net->connect(0, theirs, sendComm) == ncclSuccess, "connect failed");
    if (*recvComm == nullptr)
      RANK_CHECK(net->accept(*listenComm, recvComm) == ncclSuccess, "accept failed");
  }
  return 0;
}

int closeAll(NetApi* net, void* sendComm, void* recvComm, void* listenComm) {
  RANK_CHECK(net->closeSend(sendComm) == ncclSuccess, "closeSend");
  RANK_CHECK(net->closeRecv(recvComm) == ncclSuccess, "closeRecv");
  RANK_CHECK(net->closeListen(listenComm) == ncclSuccess, "closeListen");
  RANK_CHECK(net->finalize() == ncclSuccess, "finalize");
  return 0;
}

// Streams `sizes` (message k has pattern seed `seedBase + k`) to the next
// rank while receiving the same sequence from the previous one, with at most
// `window` requests in flight per comm, in one thread; receives are posted
// with room to spare, so every message is smaller than its buffer.
int exchange(NetApi* net, void* sendComm, void* recvComm, const std::vector<size_t>& sizes, int tag,
             int window, uint64_t sendSeed, uint64_t recvSeed) {
  size_t n = sizes.size();
  std::vector<std::vector<uint8_t>> sbuf(static_cast<size_t>(window)),
      rbuf(static_cast<size_t>(window));
  std::vector<void*> sreq(static_cast<size_t>(window)), rreq(static_cast<size_t>(window));
  std::vector<void*> smh(static_cast<size_t>(window)), rmh(static_cast<size_t>(window));
  // Buffers are registered per message, as NCCL registers each buffer it
  // hands over, and sized to it (a window of 64 MiB buffers would not fit).
  size_t sent = 0, sendDone = 0, posted = 0, recvDone = 0;
  int64_t deadline = nowMs() + kStepDeadlineMs;
  while (sendDone < n || recvDone < n) {
    RANK_CHECK(nowMs() < deadline, "stuck: sent %zu/%zu done, received %zu/%zu", sendDone, n,
               recvDone, n);
    if (sent < n && sent - sendDone < static_cast<size_t>(window)) {
      size_t slot = sent % static_cast<size_t>(window);
      if (smh[slot] == nullptr) {
        fill(&sbuf[slot], sizes[sent] + 1, sendSeed + sent);
        RANK_CHECK(net->regMr(sendComm, sbuf[slot].data(), sizes[sent] + 1, NCCL_PTR_HOST,
                              &smh[slot]) == ncclSuccess,
                   "regMr");
      }
      void* req = nullptr;
      RANK_CHECK(
          net->isend(sendComm, sbuf[slot].data(), sizes[sent], tag, smh[slot], &req) == ncclSuccess,
          "isend");
      if (req != nullptr) sreq[slot] = req, ++sent;  // NULL: try again later
    }
    if (posted < n && posted - recvDone < static_cast<size_t>(window)) {
      size_t slot = posted % static_cast<size_t>(window);
      size_t cap = sizes[posted] + 64;
      if (rmh[slot] == nullptr) {
        rbuf[slot].assign(cap, 0);
        RANK_CHECK(
            net->regMr(recvComm, rbuf[slot].data(), cap, NCCL_PTR_HOST, &rmh[slot]) == ncclSuccess,
            "regMr");
      }
      void* data = rbuf[slot].data();
      void* req = nullptr;
      int t = tag;
      RANK_CHECK(net->irecv(recvComm, 1, &data, &cap, &t, &rmh[slot], &req) == ncclSuccess,
                 "irecv");
      if (req != nullptr) rreq[slot] = req, ++posted;
    }
    if (sendDone < sent) {
      int done = 0;
      size_t slot = sendDone % static_cast<size_t>(window);
      RANK_CHECK(net->test(sreq[slot], &done, nullptr) == ncclSuccess, "test send %zu", sendDone);
      if (done) {
        RANK_CHECK(net->deregMr(sendComm, smh[slot]) == ncclSuccess, "deregMr");
        smh[slot] = nullptr;
        ++sendDone;
        deadline = nowMs() + kStepDeadlineMs;
      }
    }
    if (recvDone < posted) {
      int done = 0, got = -1;
      size_t slot = recvDone % static_cast<size_t>(window);
      RANK_CHECK(net->test(rreq[slot], &done, &got) == ncclSuccess, "test recv %zu", recvDone);
      if (done) {
        RANK_CHECK(got == static_cast<int>(sizes[recvDone]), "message %zu: %d bytes, sent %zu",
                   recvDone, got, sizes[recvDone]);
        RANK_CHECK(matches(rbuf[slot], sizes[recvDone], recvSeed + recvDone),
                   "message %zu (%zu bytes) arrived with other bytes", recvDone, sizes[recvDone]);
        RANK_CHECK(net->deregMr(recvComm, rmh[slot]) == ncclSuccess, "deregMr");
        rmh[slot] = nullptr;
        ++recvDone;
        deadline = nowMs() + kStepDeadlineMs;
      }
    }
  }
  return 0;
}

class NcclNetVersion : public ::testing::TestWithParam<int> {
 protected:
  int version() const { return GetParam(); }
};

std::string versionName(const ::testing::TestParamInfo<int>& info) {
  return "v" + std::to_string(info.param);
}

TEST_P(NcclNetVersion, LoadsAsNcclDoesAndDescribesOneHostOnlyDevicePerInterface) {
  int v = version();
  runAndExpect(1, [v](int, int, const gcclUniqueId&) {
    Rank r(v);
    RANK_CHECK(r.net != nullptr, "%s", r.lib.error().c_str());
    RANK_CHECK(strcmp(r.net->name(), "gccl") == 0, "name %s", r.net->name());
    RANK_CHECK(r.init(), "init");
    int n = 0;
    RANK_CHECK(r.net->devices(&n) == ncclSuccess && n == 1, "%d devices with GCCL_SOCKET_IFNAME=lo",
               n);
    NetProps p;
    RANK_CHECK(r.net->properties(0, &p) == ncclSuccess, "getProperties");
    RANK_CHECK(p.name == "lo", "device name %s", p.name.c_str());
    RANK_CHECK(p.ptrSupport == NCCL_PTR_HOST, "ptrSupport %d", p.ptrSupport);
    RANK_CHECK(p.speed > 0 && p.latency >= 0 && p.maxComms > 0, "speed %d latency %f maxComms %d",
               p.speed, p.latency, p.maxComms);
    RANK_CHECK(p.maxRecvs == 8, "maxRecvs %d", p.maxRecvs);
    RANK_CHECK(r.net->properties(1, &p) != ncclSuccess, "device 1 does not exist");
    RANK_CHECK(r.net->finalize() == ncclSuccess, "finalize");
    return 0;
  });
}

TEST_P(NcclNetVersion, ConnectAcceptLoopsAndTheMaximumOfRequestsInFlightKeepOrder) {
  int v = version();
  SharedArea area(sizeof(Board));
  Board* b = newBoard(&area);
  runAndExpect(2, [v, b](int me, int n, const gcclUniqueId&) {
    Rank r(v);
    RANK_CHECK(r.init(), "init");
    NetApi* net = r.net;
    void *sc, *rc, *lc;
    if (connectRing(net, b, me, (me + 1) % n, (me + n - 1) % n, &sc, &rc, &lc)) return 1;
    // The sender fills every request slot (32: NCCL's most; v6's NCCL never
    // posts more than 8); one more is back-pressure (a NULL request, never
    // an error) until a test frees a slot.
    int max = NCCL_NET_MAX_REQUESTS;
    std::vector<std::vector<uint8_t>> bufs(static_cast<size_t>(max));
    std::vector<void*> reqs(static_cast<size_t>(max));
    for (int i = 0; i < max; ++i) {
      fill(&bufs[i], 1000 + 97 * i, 100 + i);
      RANK_CHECK(
          net->isend(sc, bufs[i].data(), bufs[i].size(), 5, nullptr, &reqs[i]) == ncclSuccess &&
              reqs[i],
          "isend %d", i);
    }
    void* extra = reinterpret_cast<void*>(1);
    uint8_t one = 1;
    RANK_CHECK(net->isend(sc, &one, 1, 5, nullptr, &extra) == ncclSuccess && extra == nullptr,
               "isend past %d requests must answer a NULL request", max);
    std::vector<std::vector<uint8_t>> in(static_cast<size_t>(max), std::vector<uint8_t>(20000));
    std::vector<void*> rreqs(static_cast<size_t>(max));
    for (int i = 0; i < max; ++i) {
      void* data = in[i].data();
      size_t cap = in[i].size();
      int tag = 5;
      RANK_CHECK(
          net->irecv(rc, 1, &data, &cap, &tag, nullptr, &rreqs[i]) == ncclSuccess && rreqs[i],
          "irecv %d", i);
    }
    for (int i = 0; i < max; ++i) {
      RANK_CHECK(waitRequest(net, reqs[i], nullptr) == ncclSuccess, "send %d", i);
      int size = -1;
      RANK_CHECK(waitRequest(net, rreqs[i], &size) == ncclSuccess, "recv %d", i);
      RANK_CHECK(size == 1000 + 97 * i && matches(in[i], size, 100 + i),
                 "message %d out of order or wrong (%d bytes)", i, size);
    }
    // A freed slot takes sends again.
    void* again = nullptr;
    RANK_CHECK(net->isend(sc, &one, 1, 5, nullptr, &again) == ncclSuccess && again,
               "isend after test");
    uint8_t got = 0;
    void* data = &got;
    size_t cap = 1;
    int tag = 5;
    void* rreq = nullptr;
    RANK_CHECK(net->irecv(rc, 1, &data, &cap, &tag, nullptr, &rreq) == ncclSuccess && rreq,
               "irecv");
    RANK_CHECK(waitRequest(net, again, nullptr) == ncclSuccess &&
                   waitRequest(net, rreq, nullptr) == ncclSuccess && got == 1,
               "last byte");
    return closeAll(net, sc, rc, lc);
  });
}

TEST_P(NcclNetVersion, GroupedReceivesTagsSmallerSendsAndFlush) {
  int v = version();
  SharedArea area(sizeof(Board));
  Board* b = newBoard(&area);
  runAndExpect(2, [v, b](int me, int n, const gcclUniqueId&) {
    Rank r(v);
    RANK_CHECK(r.init(), "init");
    NetApi* net = r.net;
    void *sc, *rc, *lc;
    if (connectRing(net, b, me, (me + 1) % n, (me + n - 1) % n, &sc, &rc, &lc)) return 1;
    // Sends: tag 1 (100 B), tag 2 (0 B), tag 3 (5000 B), then two of tag 9 (10 B, 20 B).
    const int tags[] = {1, 2, 3, 9, 9};
    const size_t sizes[] = {100, 0, 5000, 10, 20};
    std::vector<std::vector<uint8_t>> out(5);
    void* sreq[5];
    for (int i = 0; i < 5; ++i) {
      fill(&out[i], sizes[i] + 1, 40 + i);
      RANK_CHECK(
          net->isend(sc, out[i].data(), sizes[i], tags[i], nullptr, &sreq[i]) == ncclSuccess &&
              sreq[i],
          "isend %d", i);
    }
    // Receives: one grouped receive for tags 2, 3, 1 (buffers larger than
    // the messages), then tag 9 twice.
    std::vector<std::vector<uint8_t>> in(5, std::vector<uint8_t>(8192));
    int gtags[3] = {2, 3, 1};
    size_t caps[3] = {16, 8192, 4096};
    void* data[3] = {in[0].data(), in[1].data(), in[2].data()};
    void* mh[3] = {nullptr, nullptr, nullptr};
    int got[3] = {-1, -1, -1};
    void* req = nullptr;
    RANK_CHECK(net->irecv(rc, 3, data, caps, gtags, mh, &req) == ncclSuccess && req,
               "grouped irecv");
    RANK_CHECK(waitRequest(net, req, got) == ncclSuccess, "grouped receive");
    RANK_CHECK(got[0] == 0 && got[1] == 5000 && got[2] == 100, "sizes %d %d %d", got[0], got[1],
               got[2]);
    RANK_CHECK(matches(in[1], 5000, 42) && matches(in[2], 100, 40), "grouped payloads");
    for (int i = 0; i < 2; ++i) {
      void* d = in[3 + i].data();
      size_t cap = 64;
      int tag = 9, size = -1;
      void* one = nullptr;
      RANK_CHECK(net->irecv(rc, 1, &d, &cap, &tag, nullptr, &one) == ncclSuccess && one,
                 "irecv tag 9");
      RANK_CHECK(waitRequest(net, one, &size) == ncclSuccess, "tag 9");
      RANK_CHECK(size == static_cast<int>(sizes[3 + i]) && matches(in[3 + i], size, 43 + i),
                 "tag 9 message %d: %d bytes", i, size);
    }
    for (int i = 0; i < 5; ++i)
      RANK_CHECK(waitRequest(net, sreq[i], nullptr) == ncclSuccess, "send %d", i);
    // Host memory needs no flush: a NULL request (done) or one that completes.
    int fsizes[1] = {100};
    void* fdata[1] = {in[2].data()};
    void* freq = reinterpret_cast<void*>(1);
    RANK_CHECK(net->iflush(rc, 1, fdata, fsizes, nullptr, &freq) == ncclSuccess, "iflush");
    if (freq != nullptr) RANK_CHECK(waitRequest(net, freq, nullptr) == ncclSuccess, "flush");
    // Device memory and DMA-BUF are refused by name, never taken.
    void* mhx = nullptr;
    RANK_CHECK(net->regMr(rc, in[0].data(), 64, NCCL_PTR_CUDA, &mhx) != ncclSuccess,
               "CUDA regMr taken");
    RANK_CHECK(net->regMrDmaBuf(rc, in[0].data(), 64, NCCL_PTR_DMABUF, 0, -1, &mhx) != ncclSuccess,
               "regMrDmaBuf taken");
    RANK_CHECK(LogCapture::get().contains("DMA-BUF registration is not supported"),
               "no log line for DMA-BUF");
    return closeAll(net, sc, rc, lc);
  });
}

TEST_P(NcclNetVersion, RandomSizesFromZeroTo64MiB) {
  int v = version();
  SharedArea area(sizeof(Board));
  Board* b = newBoard(&area);
  runAndExpect(2, [v, b](int me, int n, const gcclUniqueId&) {
    // Odd versions stripe large messages over 3 data sockets per comm (the
    // connector decides, the acceptor follows); even ones use the default.
    if (v % 2 == 1) setenv("GCCL_NSOCKS_PERPEER", "3", 1);
    Rank r(v);
    RANK_CHECK(r.init(), "init");
    NetApi* net = r.net;
    void *sc, *rc, *lc;
    if (connectRing(net, b, me, (me + 1) % n, (me + n - 1) % n, &sc, &rc, &lc)) return 1;
    // Both ranks draw the same sizes: each sends and receives the sequence.
    std::mt19937_64 rng(1000 + static_cast<uint64_t>(v));
    std::vector<size_t> sizes;
    for (int i = 0; i < 40; ++i)
      sizes.push_back(rng() % 3 == 0 ? rng() % 64 : rng() % (256 << 10));
    sizes.push_back(0);
    // A handful of large ones: the largest on two versions only, to keep the suite short.
    sizes.push_back(3 << 20);
    if (v == 11 || v == 6) sizes.push_back(64u << 20);
    std::shuffle(sizes.begin(), sizes.end(), rng);
    if (exchange(net, sc, rc, sizes, 3, net->maxRequests(), me * 1000, ((me + n - 1) % n) * 1000))
      return 1;
    return closeAll(net, sc, rc, lc);
  });
}

TEST_P(NcclNetVersion, ServiceThreadConnectsAndRegistersWhileProgressThreadMovesData) {
  int v = version();
  SharedArea area(sizeof(Board));
  Board* b = newBoard(&area);
  runAndExpect(2, [v, b](int me, int n, const gcclUniqueId&) {
    Rank r(v);
    RANK_CHECK(r.init(), "init");
    NetApi* net = r.net;
    std::atomic<void*> sc{nullptr}, rc{nullptr};
    std::atomic<bool> stop{false};
    std::atomic<int> serviceFailed{0};
    void* lc = nullptr;
    // NCCL's service thread: listen, connect, accept, then regMr/deregMr
    // on the same comms while the progress thread sends and receives.
    std::thread service([&] {
      void *s = nullptr, *c = nullptr;
      if (connectRing(net, b, me, (me + 1) % n, (me + n - 1) % n, &s, &c, &lc)) {
        serviceFailed = 1;
        return;
      }
      sc = s;
      rc = c;
      std::vector<uint8_t> scratch(4096);
      while (!stop.load()) {
        void* mh = nullptr;
        if (net->regMr(c, scratch.data(), scratch.size(), NCCL_PTR_HOST, &mh) != ncclSuccess ||
            net->deregMr(c, mh) != ncclSuccess)
          serviceFailed = 2;
        if (net->regMr(s, scratch.data(), scratch.size(), NCCL_PTR_HOST, &mh) != ncclSuccess ||
            net->deregMr(s, mh) != ncclSuccess)
          serviceFailed = 2;
      }
    });
    int64_t deadline = nowMs() + kStepDeadlineMs;
    while ((sc.load() == nullptr || rc.load() == nullptr) && serviceFailed.load() == 0 &&
           nowMs() < deadline)
      usleep(200);
    int res = 1;
    if (sc.load() != nullptr && rc.load() != nullptr) {
      std::vector<size_t> sizes;
      for (int i = 0; i < 200; ++i)
        sizes.push_back(static_cast<size_t>((i * 7919) % 70000));
      res = exchange(net, sc.load(), rc.load(), sizes, 11, net->maxRequests(), me * 7,
                     ((me + n - 1) % n) * 7);
    }
    stop = true;
    service.join();
    RANK_CHECK(serviceFailed.load() == 0, "service thread failed (%d)", serviceFailed.load());
    if (res) return res;
    return closeAll(net, sc.load(), rc.load(), lc);
  });
}

TEST_P(NcclNetVersion, FourProcessesInARing) {
  int v = version();
  SharedArea area(sizeof(Board));
  Board* b = newBoard(&area);
  runAndExpect(4, [v, b](int me, int n, const gcclUniqueId&) {
    Rank r(v);
    RANK_CHECK(r.init(), "init");
    NetApi* net = r.net;
    void *sc, *rc, *lc;
    if (connectRing(net, b, me, (me + 1) % n, (me + n - 1) % n, &sc, &rc, &lc)) return 1;
    std::vector<size_t> sizes;
    for (int i = 0; i < 30; ++i)
      sizes.push_back(static_cast<size_t>((i * 104729) % (512 << 10)));
    if (exchange(net, sc, rc, sizes, 0, net->maxRequests(), me * 100, ((me + n - 1) % n) * 100))
      return 1;
    return closeAll(net, sc, rc, lc);
  });
}

TEST_P(NcclNetVersion, ClosingIdleCommsInEitherOrderIsClean) {
  int v = version();
  SharedArea area(sizeof(Board));
  Board* b = newBoard(&area);
  runAndExpect(2, [v, b](int me, int n, const gcclUniqueId&) {
    Rank r(v);
    RANK_CHECK(r.init(), "init");
    NetApi* net = r.net;
    void *sc, *rc, *lc;
    if (connectRing(net, b, me, (me + 1) % n, (me + n - 1) % n, &sc, &rc, &lc)) return 1;
    // Rank 0 closes its receive side first, rank 1 its send side first.
    if (me == 0) {
      RANK_CHECK(net->closeRecv(rc) == ncclSuccess, "closeRecv");
      RANK_CHECK(net->closeSend(sc) == ncclSuccess, "closeSend");
    } else {
      RANK_CHECK(net->closeSend(sc) == ncclSuccess, "closeSend");
      RANK_CHECK(net->closeRecv(rc) == ncclSuccess, "closeRecv");
    }
    RANK_CHECK(net->closeListen(lc) == ncclSuccess, "closeListen");
    RANK_CHECK(!LogCapture::get().contains("failed"), "a clean close logged a failure");
    return net->finalize() == ncclSuccess ? 0 : 1;
  });
}

// The peer is SIGKILLed in the middle of a 256 MiB message: the survivor's
// test returns an error (never done, never a hang), whichever side died.
TEST_P(NcclNetVersion, PeerKilledMidTransferIsAnErrorNotAHang) {
  int v = version();
  for (int victim = 0; victim < 2; ++victim) {
    SharedArea area(sizeof(Board));
    Board* b = newBoard(&area);
    auto outcomes = runRanks(
        2,
        [v, b, victim](int me, int n, const gcclUniqueId&) {
          Rank r(v);
          RANK_CHECK(r.init(), "init");
          NetApi* net = r.net;
          void *sc, *rc, *lc;
          if (connectRing(net, b, me, (me + 1) % n, (me + n - 1) % n, &sc, &rc, &lc)) return 1;
          const size_t big = 256u << 20;
          std::vector<uint8_t> buf(big, 7);
          void* req = nullptr;
          if (me == 0) {  // sends
            RANK_CHECK(net->isend(sc, buf.data(), big, 1, nullptr, &req) == ncclSuccess && req,
                       "isend");
          } else {
            void* d = buf.data();
            size_t cap = big;
            int tag = 1;
            RANK_CHECK(net->irecv(rc, 1, &d, &cap, &tag, nullptr, &req) == ncclSuccess && req,
                       "irecv");
          }
          // The victim dies once the survivor has posted its side: a sender
          // right after isend, a receiver after one test (a few socket buffers,
          // far from 256 MiB). A surviving receiver reads nothing before the
          // sender is gone: isend writes while the socket takes bytes, and a
          // receiver draining it at loopback speed could let it write them all.
          if (me != victim) b->flags[1] = 1;
          if (me == victim) {
            int64_t deadline = nowMs() + kStepDeadlineMs;
            while (b->flags[1].load() == 0)
              RANK_CHECK(nowMs() < deadline, "the survivor never posted");
            int done = 0;
            if (me == 1)
              RANK_CHECK(net->test(req, &done, nullptr) == ncclSuccess && !done,
                         "test before the kill");
            b->flags[2] = getpid();
            kill(getpid(), SIGKILL);
          }
          if (me == 1 && victim == 0) {
            int64_t deadline = nowMs() + kStepDeadlineMs;
            while (b->flags[2].load() == 0)
              RANK_CHECK(nowMs() < deadline, "the sender never reached its end");
            // Until the kill has landed: its process is gone.
            while (kill(b->flags[2].load(), 0) == 0)
              RANK_CHECK(nowMs() < deadline, "the sender outlived its SIGKILL");
          }
          ncclResult_t res = waitRequest(net, req, nullptr, nowMs() + 10000);
          RANK_CHECK(res != ncclSuccess && res != ncclInProgress, "the survivor's test returned %d",
                     static_cast<int>(res));
          RANK_CHECK(LogCapture::get().contains("failed"), "no warning names the failure");
          return 0;
        },
        60);
    ASSERT_EQ(outcomes.size(), 2u);
    EXPECT_EQ(outcomes[victim].signal, SIGKILL);
    EXPECT_EQ(outcomes[1 - victim].signal, 0);
    EXPECT_EQ(outcomes[1 - victim].exitCode, 0) << "survivor rank " << 1 - victim;
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, NcclNetVersion, ::testing::Values(12, 11, 10, 9, 8, 7, 6),
                         versionName);

TEST(NcclNetPlugin, NcclSocketIfnameWinsOverGcclSocketIfname) {
  runAndExpect(1, [](int, int, const gcclUniqueId&) {
    setenv("NCCL_SOCKET_IFNAME", "=no-such-interface0", 1);  // GCCL_SOCKET_IFNAME=lo stays set
    Rank r(11);
    RANK_CHECK(r.init(), "init");
    int n = -1;
    RANK_CHECK(r.net->devices(&n) == ncclSuccess && n == 0, "%d devices", n);
    return 0;
  });
}

TEST(NcclNetPlugin, ConnectionWithoutTheSecretIsRefusedAndLogged) {
  SharedArea area(sizeof(Board));
  Board* b = newBoard(&area);
  runAndExpect(2, [b](int me, int, const gcclUniqueId&) {
    Rank r(11);
    RANK_CHECK(r.init(), "init");
    NetApi* net = r.net;
    int64_t deadline = nowMs() + kStepDeadlineMs;
    if (me == 0) {
      void* lc = nullptr;
      RANK_CHECK(net->listen(0, b->handle[0][1], &lc) == ncclSuccess, "listen");
      b->posted[0][1] = 1;
      void* rc = nullptr;
      // Nothing comes out of accept while only the stranger knocks.
      while (b->flags[0].load() == 0) {
        RANK_CHECK(nowMs() < deadline, "the stranger never finished");
        RANK_CHECK(net->accept(lc, &rc) == ncclSuccess && rc == nullptr, "accepted a stranger");
      }
      RANK_CHECK(LogCapture::get().contains("wrong secret"), "the refusal was not logged");
      while (rc == nullptr) {
        RANK_CHECK(nowMs() < deadline, "the member was not accepted");
        RANK_CHECK(net->accept(lc, &rc) == ncclSuccess, "accept");
      }
      uint8_t x = 0;
      void* d = &x;
      size_t cap = 1;
      int tag = 0;
      void* req = nullptr;
      RANK_CHECK(net->irecv(rc, 1, &d, &cap, &tag, nullptr, &req) == ncclSuccess && req, "irecv");
      RANK_CHECK(waitRequest(net, req, nullptr) == ncclSuccess && x == 42, "the member's byte");
      RANK_CHECK(net->closeRecv(rc) == ncclSuccess && net->closeListen(lc) == ncclSuccess, "close");
      return 0;
    }
    while (b->posted[0][1].load() == 0) {
      RANK_CHECK(nowMs() < deadline, "no handle");
      usleep(200);
    }
    uint8_t forged[NCCL_NET_HANDLE_MAXSIZE];
    memcpy(forged, b->handle[0][1], sizeof(forged));
    forged[40] ^= 0x5a;  // a byte of the secret
    void* sc = nullptr;
    ncclResult_t res = ncclSuccess;
    while (res == ncclSuccess && sc == nullptr && nowMs() < deadline)
      res = net->connect(0, forged, &sc);
    RANK_CHECK(sc == nullptr && res != ncclSuccess, "a connection without the secret got through");
    b->flags[0] = 1;
    uint8_t good[NCCL_NET_HANDLE_MAXSIZE];
    memcpy(good, b->handle[0][1], sizeof(good));
    while (sc == nullptr) {
      RANK_CHECK(nowMs() < deadline, "connect with the secret");
      RANK_CHECK(net->connect(0, good, &sc) == ncclSuccess, "connect");
    }
    uint8_t x = 42;
    void* req = nullptr;
    RANK_CHECK(net->isend(sc, &x, 1, 0, nullptr, &req) == ncclSuccess && req, "isend");
    RANK_CHECK(waitRequest(net, req, nullptr) == ncclSuccess, "send");
    return net->closeSend(sc) == ncclSuccess ? 0 : 1;
  });
}

}  // namespace
}  // namespace gccl::test

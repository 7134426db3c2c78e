// Connection authentication (transports/tcp/handshake.h) over a local socket
// pair: the acceptor side (ServerHandshake) in the test thread, driven by
// poll(), and the connector side in a second thread. Every wait has a
// deadline of a few seconds, so a handshake that fails to fail shows up as a
// test failure, not a hang.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/check.h"
#include "base/hmac.h"
#include "transports/tcp/frame.h"
#include "transports/tcp/handshake.h"
#include "transports/tcp/socket.h"

namespace gccl::tcp {
namespace {

constexpr int64_t kDeadlineMs = 5000;
constexpr uint16_t kKindChallenge = 1, kKindHello = 2, kKindProof = 3;

Credentials makeCredentials(uint64_t commHash, uint8_t secretSeed) {
  Credentials c;
  c.commHash = commHash;
  for (size_t i = 0; i < sizeof(c.secret); ++i)
    c.secret[i] = static_cast<uint8_t>(secretSeed + i);
  return c;
}

const Credentials kCreds = makeCredentials(0x1122334455667788ull, 1);
const Credentials kOtherSecret = makeCredentials(0x1122334455667788ull, 101);
const Credentials kOtherComm = makeCredentials(0x8877665544332211ull, 1);

// Both ends of an AF_UNIX stream pair, non-blocking like the transport's sockets.
struct SocketPair {
  int server = -1;
  int client = -1;
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
      ADD_FAILURE() << "socketpair: " << strerror(errno);
      return;
    }
    server = fds[0];
    client = fds[1];
    EXPECT_EQ(setNonBlocking(server), gcclSuccess);
    EXPECT_EQ(setNonBlocking(client), gcclSuccess);
  }
  ~SocketPair() {
    closeFd(&server);
    closeFd(&client);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
};

struct Outcome {
  gcclResult_t result = gcclInternalError;
  std::string error;
};

// Runs the acceptor side to completion: start(), then onReadable() whenever
// poll() says the socket is readable, until complete, an error or the deadline.
Outcome runServer(ServerHandshake* hs, int fd, const Credentials* creds) {
  Outcome o;
  clearThreadLastError();
  int64_t deadline = nowMs() + kDeadlineMs;
  o.result = hs->start(fd, creds, deadline);
  while (o.result == gcclSuccess) {
    bool complete = false;
    o.result = hs->onReadable(&complete);
    if (o.result != gcclSuccess || complete) break;
    int64_t left = deadline - nowMs();
    if (left <= 0) {
      o.result = gcclTimeout;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, static_cast<int>(left));
  }
  o.error = threadLastError();
  return o;
}

// The connector side in its own thread.
class Client {
 public:
  Client(int fd, const Credentials& creds, const HelloInfo& hello) {
    thread_ = std::thread([this, fd, creds, hello] {
      clearThreadLastError();
      outcome_.result = clientHandshake(fd, creds, hello, nowMs() + kDeadlineMs);
      outcome_.error = threadLastError();
    });
  }
  ~Client() {
    if (thread_.joinable()) thread_.join();
  }
  const Outcome& join() {
    thread_.join();
    return outcome_;
  }

 private:
  Outcome outcome_;
  std::thread thread_;
};

// Any code in the test thread that plays a peer by hand.
class Peer {
 public:
  template <typename F>
  explicit Peer(F body) : thread_(body) {}
  ~Peer() { thread_.join(); }

 private:
  std::thread thread_;
};

// Waits (up to the deadline) for the other end to close, so that a fake peer
// does not close before the side under test has judged what it sent.
void waitForClose(int fd) {
  int64_t deadline = nowMs() + kDeadlineMs;
  char buf[256];
  while (nowMs() < deadline) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
    if (n < 0) {
      pollfd p{fd, POLLIN, 0};
      poll(&p, 1, 100);
    }
  }
}

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

HelloInfo makeHello(Purpose purpose, int32_t fromRank, int32_t toRank, uint32_t channel) {
  HelloInfo h;
  h.purpose = purpose;
  h.fromRank = fromRank;
  h.toRank = toRank;
  h.channel = channel;
  return h;
}

void mac(const Credentials& creds, const char* label, const uint8_t* nonceA,
         const uint8_t* helloSigned, uint8_t out[32]) {
  HmacSha256 h(creds.secret, sizeof(creds.secret));
  h.update(label, strlen(label));
  h.update(nonceA, 16);
  h.update(helloSigned, 48);
  h.final(out);
}

// ---- Both sides real --------------------------------------------------------

TEST(Handshake, BothSidesSucceedWithTheRightSecret) {
  SocketPair sp;
  Client client(sp.client, kCreds, makeHello(Purpose::kData, 0, 1, 0));
  ServerHandshake hs;
  Outcome server = runServer(&hs, sp.server, &kCreds);
  const Outcome& c = client.join();
  EXPECT_EQ(server.result, gcclSuccess) << server.error;
  EXPECT_EQ(c.result, gcclSuccess) << c.error;
}

TEST(Handshake, ServerInfoCarriesPurposeRanksAndChannel) {
  SocketPair sp;
  Client client(sp.client, kCreds, makeHello(Purpose::kBootstrap, 7, 3, 5));
  ServerHandshake hs;
  Outcome server = runServer(&hs, sp.server, &kCreds);
  ASSERT_EQ(server.result, gcclSuccess) << server.error;
  EXPECT_EQ(client.join().result, gcclSuccess);
  EXPECT_EQ(hs.info().purpose, Purpose::kBootstrap);
  EXPECT_EQ(hs.info().fromRank, 7);
  EXPECT_EQ(hs.info().toRank, 3);
  EXPECT_EQ(hs.info().channel, 5u);
  EXPECT_EQ(hs.fd(), sp.server);
}

TEST(Handshake, ServerInfoCarriesDataPurposeAndLargeChannel) {
  SocketPair sp;
  Client client(sp.client, kCreds, makeHello(Purpose::kData, 1023, 0, 15));
  ServerHandshake hs;
  Outcome server = runServer(&hs, sp.server, &kCreds);
  ASSERT_EQ(server.result, gcclSuccess) << server.error;
  EXPECT_EQ(client.join().result, gcclSuccess);
  EXPECT_EQ(hs.info().purpose, Purpose::kData);
  EXPECT_EQ(hs.info().fromRank, 1023);
  EXPECT_EQ(hs.info().toRank, 0);
  EXPECT_EQ(hs.info().channel, 15u);
}

TEST(Handshake, WrongSecretIsRejectedOnBothSides) {
  SocketPair sp;
  int64_t start = nowMs();
  Client client(sp.client, kOtherSecret, makeHello(Purpose::kData, 0, 1, 0));
  ServerHandshake hs;
  Outcome server = runServer(&hs, sp.server, &kCreds);
  EXPECT_EQ(server.result, gcclInternalError);
  EXPECT_TRUE(contains(server.error, "secret")) << server.error;
  closeFd(&sp.server);  // what the acceptor does with a rejected peer
  const Outcome& c = client.join();
  EXPECT_NE(c.result, gcclSuccess);
  EXPECT_NE(c.result, gcclTimeout) << "the client waited out its deadline: " << c.error;
  EXPECT_LT(nowMs() - start, kDeadlineMs);
}

TEST(Handshake, WrongCommHashIsRejected) {
  SocketPair sp;
  Client client(sp.client, kOtherComm, makeHello(Purpose::kData, 0, 1, 0));
  ServerHandshake hs;
  Outcome server = runServer(&hs, sp.server, &kCreds);
  EXPECT_EQ(server.result, gcclInternalError);
  EXPECT_TRUE(contains(server.error, "another communicator")) << server.error;
  closeFd(&sp.server);
  EXPECT_NE(client.join().result, gcclSuccess);
}

// ---- A fake connector -------------------------------------------------------

TEST(Handshake, RandomBytesAreRejected) {
  std::mt19937_64 rng(0x68616e64ull);
  for (int round = 0; round < 24; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    SocketPair sp;
    size_t len = kHelloBytes + static_cast<size_t>(rng() % 200);
    if (round % 4 == 0) len = kHelloBytes;  // exactly a hello's size: judged on content
    std::vector<uint8_t> junk(len);
    for (auto& b : junk)
      b = static_cast<uint8_t>(rng());
    int clientFd = sp.client;
    Outcome server;
    {
      Peer peer([clientFd, &junk] {
        writeAllUntil(clientFd, junk.data(), junk.size(), nowMs() + kDeadlineMs, "junk");
        waitForClose(clientFd);
      });
      ServerHandshake hs;
      server = runServer(&hs, sp.server, &kCreds);
      closeFd(&sp.server);
    }
    EXPECT_NE(server.result, gcclSuccess);
    EXPECT_NE(server.result, gcclTimeout) << server.error;
  }
}

// Random bytes behind a well-formed preamble and the right hash reach the MAC check.
TEST(Handshake, HelloWithARandomMacIsRejected) {
  std::mt19937_64 rng(0x6d6163ull);
  SocketPair sp;
  uint8_t hello[kHelloBytes];
  for (auto& b : hello)
    b = static_cast<uint8_t>(rng());
  putLe32(hello, kFrameMagic);
  putLe16(hello + 4, kWireVersion);
  putLe16(hello + 6, kKindHello);
  putLe64(hello + 8, kCreds.commHash);
  int clientFd = sp.client;
  Outcome server;
  {
    Peer peer([clientFd, &hello] {
      uint8_t challenge[kChallengeBytes];
      readAllUntil(clientFd, challenge, sizeof(challenge), nowMs() + kDeadlineMs, "challenge");
      writeAllUntil(clientFd, hello, sizeof(hello), nowMs() + kDeadlineMs, "hello");
      waitForClose(clientFd);
    });
    ServerHandshake hs;
    server = runServer(&hs, sp.server, &kCreds);
    closeFd(&sp.server);
  }
  EXPECT_EQ(server.result, gcclInternalError);
  EXPECT_TRUE(contains(server.error, "secret")) << server.error;
}

TEST(Handshake, PartialHelloThenCloseIsRejected) {
  SocketPair sp;
  int clientFd = sp.client;
  Outcome server;
  {
    Peer peer([&sp, clientFd] {
      uint8_t challenge[kChallengeBytes];
      readAllUntil(clientFd, challenge, sizeof(challenge), nowMs() + kDeadlineMs, "challenge");
      uint8_t hello[30] = {};
      putLe32(hello, kFrameMagic);
      putLe16(hello + 4, kWireVersion);
      putLe16(hello + 6, kKindHello);
      putLe64(hello + 8, kCreds.commHash);
      writeAllUntil(clientFd, hello, sizeof(hello), nowMs() + kDeadlineMs, "partial hello");
      closeFd(&sp.client);
    });
    ServerHandshake hs;
    server = runServer(&hs, sp.server, &kCreds);
  }
  EXPECT_EQ(server.result, gcclRemoteError);
  EXPECT_TRUE(contains(server.error, "closed after 30 of 80")) << server.error;
}

TEST(Handshake, BytesAfterTheHelloAreRejected) {
  SocketPair sp;
  int clientFd = sp.client;
  Outcome server;
  {
    Peer peer([clientFd] {
      uint8_t challenge[kChallengeBytes];
      readAllUntil(clientFd, challenge, sizeof(challenge), nowMs() + kDeadlineMs, "challenge");
      uint8_t msg[kHelloBytes + 1] = {};
      putLe32(msg, kFrameMagic);
      putLe16(msg + 4, kWireVersion);
      putLe16(msg + 6, kKindHello);
      putLe64(msg + 8, kCreds.commHash);
      mac(kCreds, "gccl-hello", challenge + 8, msg, msg + 48);
      msg[kHelloBytes] = 0x5a;  // a frame sent before the proof arrived
      writeAllUntil(clientFd, msg, sizeof(msg), nowMs() + kDeadlineMs, "hello");
      waitForClose(clientFd);
    });
    ServerHandshake hs;
    server = runServer(&hs, sp.server, &kCreds);
    closeFd(&sp.server);
  }
  EXPECT_EQ(server.result, gcclInternalError);
  EXPECT_TRUE(contains(server.error, "unexpected bytes")) << server.error;
}

// ---- A fake acceptor ---------------------------------------------------------

// Plays the acceptor by hand, following the layout in handshake.h: sends a
// challenge, reads the hello and answers with a proof made with `proofKey`.
// *helloOk says whether the hello had the documented layout and a MAC made
// with `expectKey`.
void fakeServer(int fd, const Credentials& expectKey, const Credentials& proofKey,
                const HelloInfo& expectHello, bool* helloOk) {
  int64_t deadline = nowMs() + kDeadlineMs;
  uint8_t challenge[kChallengeBytes];
  putLe32(challenge, kFrameMagic);
  putLe16(challenge + 4, kWireVersion);
  putLe16(challenge + 6, kKindChallenge);
  for (size_t i = 8; i < kChallengeBytes; ++i)
    challenge[i] = static_cast<uint8_t>(0xa0 + i);
  const uint8_t* nonceA = challenge + 8;
  if (writeAllUntil(fd, challenge, sizeof(challenge), deadline, "challenge") != gcclSuccess) return;
  uint8_t hello[kHelloBytes];
  if (readAllUntil(fd, hello, sizeof(hello), deadline, "hello") != gcclSuccess) return;
  uint8_t expectMac[32];
  mac(expectKey, "gccl-hello", nonceA, hello, expectMac);
  *helloOk = getLe32(hello) == kFrameMagic && getLe16(hello + 4) == kWireVersion &&
             getLe16(hello + 6) == kKindHello && getLe64(hello + 8) == expectKey.commHash &&
             getLe32(hello + 16) == static_cast<uint32_t>(expectHello.purpose) &&
             static_cast<int32_t>(getLe32(hello + 20)) == expectHello.fromRank &&
             static_cast<int32_t>(getLe32(hello + 24)) == expectHello.toRank &&
             getLe32(hello + 28) == expectHello.channel &&
             std::memcmp(expectMac, hello + 48, 32) == 0;
  uint8_t proof[kProofBytes];
  putLe32(proof, kFrameMagic);
  putLe16(proof + 4, kWireVersion);
  putLe16(proof + 6, kKindProof);
  mac(proofKey, "gccl-proof", nonceA, hello, proof + 8);
  writeAllUntil(fd, proof, sizeof(proof), deadline, "proof");
}

TEST(Handshake, ClientSendsTheDocumentedHelloAndAcceptsAValidProof) {
  SocketPair sp;
  HelloInfo hello = makeHello(Purpose::kBootstrap, -1, 4, 9);
  bool helloOk = false;
  int serverFd = sp.server;
  Outcome c;
  {
    Peer peer(
        [serverFd, &hello, &helloOk] { fakeServer(serverFd, kCreds, kCreds, hello, &helloOk); });
    c.result = clientHandshake(sp.client, kCreds, hello, nowMs() + kDeadlineMs);
    c.error = threadLastError();
  }
  EXPECT_TRUE(helloOk);
  EXPECT_EQ(c.result, gcclSuccess) << c.error;
}

TEST(Handshake, ClientRejectsAServerThatDoesNotKnowTheSecret) {
  SocketPair sp;
  HelloInfo hello = makeHello(Purpose::kData, 2, 0, 1);
  bool helloOk = false;
  int serverFd = sp.server;
  Outcome c;
  {
    Peer peer([serverFd, &hello, &helloOk] {
      // The impostor takes the hello as it is (it cannot check it) and proves
      // with the key it has.
      fakeServer(serverFd, kCreds, kOtherSecret, hello, &helloOk);
    });
    clearThreadLastError();
    c.result = clientHandshake(sp.client, kCreds, hello, nowMs() + kDeadlineMs);
    c.error = threadLastError();
  }
  EXPECT_EQ(c.result, gcclRemoteError);
  EXPECT_TRUE(contains(c.error, "does not know")) << c.error;
}

TEST(Handshake, ClientRejectsAChallengeWithBadMagic) {
  SocketPair sp;
  uint8_t challenge[kChallengeBytes] = {'N', 'O', 'P', 'E', 1, 0, 1, 0};
  ASSERT_EQ(write(sp.server, challenge, sizeof(challenge)),
            static_cast<ssize_t>(sizeof(challenge)));
  clearThreadLastError();
  gcclResult_t r =
      clientHandshake(sp.client, kCreds, makeHello(Purpose::kData, 0, 1, 0), nowMs() + kDeadlineMs);
  EXPECT_EQ(r, gcclInternalError);
  EXPECT_TRUE(contains(threadLastError(), "bad magic")) << threadLastError();
}

TEST(Handshake, ClientTimesOutWhenTheServerStaysSilent) {
  SocketPair sp;
  int64_t start = nowMs();
  gcclResult_t r =
      clientHandshake(sp.client, kCreds, makeHello(Purpose::kData, 0, 1, 0), start + 200);
  EXPECT_EQ(r, gcclTimeout);
  EXPECT_GE(nowMs() - start, 200);
  EXPECT_LT(nowMs() - start, kDeadlineMs);
}

// ---- The connector side without waiting (ClientHandshake) ---------------------

// Steps a ClientHandshake in its own thread, polling for what it wants next,
// until complete, an error or the deadline.
class SteppedClient {
 public:
  SteppedClient(int fd, const Credentials& creds, const HelloInfo& hello) {
    thread_ = std::thread([this, fd, creds, hello] {
      clearThreadLastError();
      ClientHandshake hs;
      int64_t deadline = nowMs() + kDeadlineMs;
      outcome_.result = hs.start(fd, creds, hello);
      while (outcome_.result == gcclSuccess) {
        bool complete = false;
        outcome_.result = hs.step(&complete);
        if (outcome_.result != gcclSuccess || complete) break;
        if (nowMs() > deadline) {
          outcome_.result = gcclTimeout;
          break;
        }
        pollfd p{fd, hs.wantEvents(), 0};
        poll(&p, 1, 10);
      }
      outcome_.error = threadLastError();
    });
  }
  ~SteppedClient() {
    if (thread_.joinable()) thread_.join();
  }
  const Outcome& join() {
    thread_.join();
    return outcome_;
  }

 private:
  Outcome outcome_;
  std::thread thread_;
};

TEST(Handshake, SteppedClientSucceedsAndTheServerReadsItsNetPluginHello) {
  SocketPair sp;
  SteppedClient client(sp.client, kCreds, makeHello(Purpose::kNetPlugin, 12345, 4, 3));
  ServerHandshake hs;
  Outcome server = runServer(&hs, sp.server, &kCreds);
  ASSERT_EQ(server.result, gcclSuccess) << server.error;
  const Outcome& c = client.join();
  EXPECT_EQ(c.result, gcclSuccess) << c.error;
  EXPECT_EQ(hs.info().purpose, Purpose::kNetPlugin);
  EXPECT_EQ(hs.info().fromRank, 12345);
  EXPECT_EQ(hs.info().toRank, 4);
  EXPECT_EQ(hs.info().channel, 3u);
}

// A restarted rank's socket (TcpTransport::rejoin): the purpose and the
// packed channel word arrive as sent.
TEST(Handshake, RejoinHelloCarriesIndexCountAndIncarnation) {
  SocketPair sp;
  SteppedClient client(sp.client, kCreds,
                       makeHello(Purpose::kRejoin, 1, 0, rejoinChannel(2, 4, 7)));
  ServerHandshake hs;
  Outcome server = runServer(&hs, sp.server, &kCreds);
  ASSERT_EQ(server.result, gcclSuccess) << server.error;
  const Outcome& c = client.join();
  EXPECT_EQ(c.result, gcclSuccess) << c.error;
  EXPECT_EQ(hs.info().purpose, Purpose::kRejoin);
  EXPECT_EQ(hs.info().fromRank, 1);
  EXPECT_EQ(hs.info().toRank, 0);
  EXPECT_EQ(rejoinSocketIndex(hs.info().channel), 2);
  EXPECT_EQ(rejoinSocketCount(hs.info().channel), 4);
  EXPECT_EQ(rejoinIncarnation(hs.info().channel), 7u);
  EXPECT_EQ(rejoinIncarnation(rejoinChannel(17, 18, kMaxRejoinIncarnation)), kMaxRejoinIncarnation);
  EXPECT_EQ(rejoinSocketIndex(rejoinChannel(17, 18, kMaxRejoinIncarnation)), 17);
  EXPECT_EQ(rejoinSocketCount(rejoinChannel(17, 18, kMaxRejoinIncarnation)), 18);
}

TEST(Handshake, SteppedClientWithAWrongSecretFailsOnBothSides) {
  SocketPair sp;
  SteppedClient client(sp.client, kOtherSecret, makeHello(Purpose::kNetPlugin, 1, 3, 0));
  ServerHandshake hs;
  Outcome server = runServer(&hs, sp.server, &kCreds);
  EXPECT_EQ(server.result, gcclInternalError);
  EXPECT_TRUE(contains(server.error, "secret")) << server.error;
  closeFd(&sp.server);
  const Outcome& c = client.join();
  EXPECT_EQ(c.result, gcclRemoteError) << c.error;
  EXPECT_TRUE(contains(c.error, "instead of proving the secret")) << c.error;
}

TEST(Handshake, SteppedClientNeverWaitsForASilentServer) {
  SocketPair sp;
  ClientHandshake hs;
  ASSERT_EQ(hs.start(sp.client, kCreds, makeHello(Purpose::kNetPlugin, 1, 3, 0)), gcclSuccess);
  int64_t start = nowMs();
  for (int i = 0; i < 100; ++i) {
    bool complete = true;
    ASSERT_EQ(hs.step(&complete), gcclSuccess) << threadLastError();
    EXPECT_FALSE(complete);
  }
  EXPECT_LT(nowMs() - start, 1000) << "100 steps against a silent server took that long";
  EXPECT_EQ(hs.wantEvents(), POLLIN);  // connected, waiting for the challenge
  EXPECT_FALSE(hs.challenged());
}

}  // namespace
}  // namespace gccl::tcp

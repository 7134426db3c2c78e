#include "core/bootstrap.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "base/check.h"
#include "base/hmac.h"
#include "base/le.h"
#include "base/log.h"
#include "base/param.h"
#include "transports/tcp/acceptor.h"
#include "transports/tcp/frame.h"
#include "transports/tcp/socket.h"

namespace gccl {

namespace {

constexpr uint32_t kIdMagic = 0x44494347u;  // "GCID"
constexpr uint16_t kIdVersion = 1;
constexpr uint32_t kJoinMagic = 0x4e4a4347u;  // "GCJN"
// A join that asks the root to keep serving after the rendezvous, so that a
// restarted rank can rejoin (fault-tolerant communicators).
constexpr uint32_t kJoinKeepMagic = 0x4b4a4347u;  // "GCJK"
// A restarted rank's request to the root kept serving; the same layout as a
// join: magic, rank, nranks, ms left, blob length, then the blob.
constexpr uint32_t kRejoinMagic = 0x4a524347u;  // "GCRJ"
// magic, rank, nranks, ms left, then the length of the rank's address blob
// (the blob follows: what its transports publish, transports/registry.h).
constexpr size_t kJoinBytes = 20;
constexpr uint32_t kStatusOk = 0, kStatusError = 1;

// One rank's connection to the root, once it authenticated.
struct Joiner {
  int fd = -1;
  uint8_t join[kJoinBytes] = {};
  size_t got = 0;  // bytes of join, then of blob
  bool headerDone = false;
  bool joined = false;
  bool keep = false;  // joined with kJoinKeepMagic
  int rank = -1;
  int nranks = -1;
  std::string blob;
};

void sendStatus(int fd, uint32_t status, const std::vector<uint8_t>& body, int64_t deadline) {
  uint8_t head[8];
  putLe32(head, status);
  putLe32(head + 4, static_cast<uint32_t>(body.size()));
  if (tcp::writeAllUntil(fd, head, sizeof(head), deadline, "answering a rank") == gcclSuccess)
    (void)tcp::writeAllUntil(fd, body.data(), body.size(), deadline, "answering a rank");
}

// Rendezvous roots still running in this process (see waitForLocalRoots).
std::mutex gRootsMutex;
std::condition_variable gRootsDone;
int gActiveRoots = 0;

// A root thread of this process, as stopRejoinService finds it (by the
// communicator's nonce). `stop` and `serving` are read by the root thread
// without the lock; `done` is guarded by gServicesMutex.
struct RejoinService {
  std::string nonce;
  std::atomic<bool> stop{false};
  std::atomic<bool> serving{false};  // past the rendezvous, serving rejoins
  bool done = false;                 // the listening socket is closed
};
std::mutex gServicesMutex;
std::condition_variable gServicesChanged;
std::vector<std::shared_ptr<RejoinService>> gServices;

// How long a rejoining rank may take to send its request and read the answer
// once it authenticated: a live rank does both at once, and the root serves
// others meanwhile, so this only bounds what a stuck one holds.
constexpr int64_t kRejoinClientMs = tcp::kMaxHelloWaitMs;
// How often the serving root looks at its stop flag, at the least.
constexpr int64_t kStopCheckMs = 200;

// What the rendezvous left for serving rejoins: the table, and whether any
// rank asked the root to keep serving.
struct RootTable {
  bool keepServing = false;
  std::vector<std::string> table;
};

// The rank table as the root sends it: every blob in rank order, each behind
// its length.
void appendTable(const std::vector<std::string>& table, std::vector<uint8_t>* body) {
  for (const std::string& b : table) {
    uint8_t len[4];
    putLe32(len, static_cast<uint32_t>(b.size()));
    body->insert(body->end(), len, len + 4);
    body->insert(body->end(), b.begin(), b.end());
  }
}

void startRootThread(int fd, const UniqueIdFields& fields, int64_t deadline);

// Serves one rendezvous until every rank has joined or the deadline passes.
// Connections that have not authenticated are the acceptor's (bounded and
// short-lived, so that strangers cannot keep members out); members stay until
// the end. On success *kept gets the table and whether to keep serving.
void serveRendezvous(tcp::Acceptor& acceptor, const std::string& startError, int64_t deadline,
                     RootTable* kept) {
  std::vector<std::unique_ptr<Joiner>> clients;
  int nranks = -1;
  int joined = 0;
  std::string error = startError;
  auto drop = [&](size_t i, const char* why) {
    GCCL_WARN(kLogBootstrap, "rendezvous: dropped an authenticated connection: %s", why);
    close(clients[i]->fd);
    clients.erase(clients.begin() + static_cast<long>(i));
  };
  std::vector<tcp::Admitted> admitted;
  while (nowMs() < deadline && (nranks < 0 || joined < nranks) && error.empty()) {
    std::vector<pollfd> pfds{{acceptor.pollFd(), POLLIN, 0}};
    for (auto& c : clients)
      pfds.push_back({c->fd, POLLIN, 0});
    int64_t now = nowMs();
    int64_t wake = std::min(deadline, acceptor.nextDeadlineMs());
    int n = poll(pfds.data(), pfds.size(), static_cast<int>(std::max<int64_t>(wake - now, 0)));
    admitted.clear();
    acceptor.process(nowMs(), &admitted);
    for (tcp::Admitted& a : admitted) {
      if (a.info.purpose != tcp::Purpose::kBootstrap) {
        acceptor.reject(&a, "not a rendezvous connection");
        continue;
      }
      auto c = std::make_unique<Joiner>();
      c->fd = a.fd;
      clients.push_back(std::move(c));
    }
    if (n <= 0) continue;
    for (size_t k = 1; k < pfds.size(); ++k) {
      if (pfds[k].revents == 0) continue;
      size_t i = 0;
      while (i < clients.size() && clients[i]->fd != pfds[k].fd)
        ++i;
      if (i == clients.size()) continue;
      Joiner& c = *clients[i];
      if (c.joined) {
        // A joined rank has nothing more to say; readable means it hung up.
        error = "rank " + std::to_string(c.rank) + " left the rendezvous before it completed";
        continue;
      }
      ssize_t got = c.headerDone ? recv(c.fd, &c.blob[c.got], c.blob.size() - c.got, MSG_DONTWAIT)
                                 : recv(c.fd, c.join + c.got, kJoinBytes - c.got, MSG_DONTWAIT);
      if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        drop(i, "closed before joining");
        continue;
      }
      c.got += static_cast<size_t>(got);
      if (!c.headerDone) {
        if (c.got < kJoinBytes) continue;
        uint32_t magic = getLe32(c.join);
        if (magic != kJoinMagic && magic != kJoinKeepMagic) {
          drop(i, "bad join message");
          continue;
        }
        c.keep = magic == kJoinKeepMagic;
        uint32_t blobBytes = getLe32(c.join + 16);
        if (blobBytes > kMaxBlobBytes) {
          drop(i, "address blob too large");
          continue;
        }
        c.headerDone = true;
        c.got = 0;
        c.blob.assign(blobBytes, '\0');
      }
      if (c.got < c.blob.size()) continue;
      c.joined = true;
      c.rank = static_cast<int>(getLe32(c.join + 4));
      c.nranks = static_cast<int>(getLe32(c.join + 8));
      // Answer before the most impatient rank gives up, so it learns who is
      // missing: a margin for the answer to travel, a tenth of what that rank
      // has left (at most 300 ms), so that short timeouts keep most of their
      // time for ranks that start late.
      int64_t msLeft = static_cast<int64_t>(getLe32(c.join + 12));
      int64_t margin = std::min<int64_t>(msLeft / 10, 300);
      deadline = std::min(deadline, nowMs() + std::max<int64_t>(msLeft - margin, 0));
      if (nranks < 0) nranks = c.nranks;
      if (c.nranks != nranks) {
        error = "ranks disagree on the communicator size: rank " + std::to_string(c.rank) +
                " says " + std::to_string(c.nranks) + ", an earlier rank said " +
                std::to_string(nranks);
      } else if (c.rank < 0 || c.rank >= nranks) {
        error = "rank " + std::to_string(c.rank) + " is out of range for " +
                std::to_string(nranks) + " ranks";
      } else {
        for (auto& other : clients)
          if (other.get() != &c && other->rank == c.rank && other->joined)
            error = "rank " + std::to_string(c.rank) + " joined twice";
      }
      ++joined;
    }
  }
  if (error.empty() && (nranks < 0 || joined < nranks)) {
    std::string missing;
    if (nranks > 0) {
      std::vector<bool> seen(static_cast<size_t>(nranks), false);
      for (auto& c : clients)
        if (c->rank >= 0 && c->rank < nranks) seen[static_cast<size_t>(c->rank)] = true;
      for (int r = 0; r < nranks; ++r)
        if (!seen[static_cast<size_t>(r)])
          missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    }
    error = "timed out: rank(s) " + (missing.empty() ? std::string("?") : missing) +
            " never joined the rendezvous";
  }
  std::vector<uint8_t> body;
  uint32_t status = kStatusOk;
  if (error.empty()) {
    // Every rank's blob in rank order, each behind its length.
    kept->table.assign(static_cast<size_t>(nranks), std::string());
    for (auto& c : clients) {
      if (!c->joined) continue;
      kept->table[static_cast<size_t>(c->rank)] = c->blob;
      kept->keepServing = kept->keepServing || c->keep;
    }
    appendTable(kept->table, &body);
  } else {
    GCCL_WARN(kLogBootstrap, "rendezvous failed: %s", error.c_str());
    status = kStatusError;
    body.assign(error.begin(), error.end());
  }
  int64_t answerDeadline = nowMs() + 10000;
  for (auto& c : clients) {
    if (c->joined) sendStatus(c->fd, status, body, answerDeadline);
    close(c->fd);
  }
}

// A restarted rank's connection to the root kept serving.
struct RejoinClient {
  int fd = -1;
  int64_t deadline = 0;
  std::string from;
  uint8_t head[kJoinBytes] = {};
  size_t got = 0;  // bytes of head, then of blob
  bool headerDone = false;
  std::string blob;
  std::vector<uint8_t> answer;  // set once the request is read: being written
  size_t sent = 0;
};

// What the root answers a complete rejoin request: the new table and the
// rank's incarnation, or why not.
void answerRejoin(RejoinClient& c, RootTable& kept, std::vector<uint32_t>* incarnations) {
  uint32_t magic = getLe32(c.head);
  int rank = static_cast<int>(getLe32(c.head + 4));
  int nranks = static_cast<int>(getLe32(c.head + 8));
  int size = static_cast<int>(kept.table.size());
  std::string error;
  if (magic != kRejoinMagic)
    error = "rank " + std::to_string(rank) +
            " joined after the rendezvous of this communicator completed (a restarted rank "
            "rejoins it instead)";
  else if (nranks != size)
    error =
        "the communicator has " + std::to_string(size) + " ranks, not " + std::to_string(nranks);
  else if (rank < 0 || rank >= size)
    error =
        "rank " + std::to_string(rank) + " is out of range for " + std::to_string(size) + " ranks";
  std::vector<uint8_t> body;
  uint32_t status = kStatusOk;
  if (error.empty()) {
    uint32_t incarnation = ++(*incarnations)[static_cast<size_t>(rank)];
    kept.table[static_cast<size_t>(rank)] = c.blob;
    uint8_t inc[4];
    putLe32(inc, incarnation);
    body.insert(body.end(), inc, inc + 4);
    appendTable(kept.table, &body);
    GCCL_INFO(kLogBootstrap, "rendezvous: rank %d rejoined from %s (incarnation %u)", rank,
              c.from.c_str(), incarnation);
  } else {
    GCCL_WARN(kLogBootstrap, "rendezvous: refused a rejoin from %s: %s", c.from.c_str(),
              error.c_str());
    status = kStatusError;
    body.assign(error.begin(), error.end());
  }
  c.answer.resize(8);
  putLe32(c.answer.data(), status);
  putLe32(c.answer.data() + 4, static_cast<uint32_t>(body.size()));
  c.answer.insert(c.answer.end(), body.begin(), body.end());
  c.sent = 0;
}

// Reads what a rejoining rank sent, answering once the request is whole;
// false when the connection is to be closed (it hung up, or sent something
// that is not a request).
bool readRejoin(RejoinClient& c, RootTable& kept, std::vector<uint32_t>* incarnations) {
  ssize_t got = c.headerDone ? recv(c.fd, &c.blob[c.got], c.blob.size() - c.got, MSG_DONTWAIT)
                             : recv(c.fd, c.head + c.got, kJoinBytes - c.got, MSG_DONTWAIT);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (got <= 0) {
    GCCL_WARN(kLogBootstrap, "rendezvous: a rejoining connection from %s closed mid-request",
              c.from.c_str());
    return false;
  }
  c.got += static_cast<size_t>(got);
  if (!c.headerDone) {
    if (c.got < kJoinBytes) return true;
    uint32_t magic = getLe32(c.head);
    if (magic != kRejoinMagic && magic != kJoinMagic && magic != kJoinKeepMagic) {
      GCCL_WARN(kLogBootstrap, "rendezvous: dropped a connection from %s: bad rejoin message",
                c.from.c_str());
      return false;
    }
    // The rank's own deadline, when it is the nearer one.
    c.deadline = std::min(c.deadline, nowMs() + static_cast<int64_t>(getLe32(c.head + 12)));
    uint32_t blobBytes = getLe32(c.head + 16);
    if (blobBytes > kMaxBlobBytes) {
      // Answered now: a rank that checked its blob never sends one this large.
      std::string error = "the address blob has " + std::to_string(blobBytes) +
                          " bytes, more than the " + std::to_string(kMaxBlobBytes) +
                          " the rendezvous takes";
      GCCL_WARN(kLogBootstrap, "rendezvous: refused a rejoin from %s: %s", c.from.c_str(),
                error.c_str());
      c.answer.resize(8);
      putLe32(c.answer.data(), kStatusError);
      putLe32(c.answer.data() + 4, static_cast<uint32_t>(error.size()));
      c.answer.insert(c.answer.end(), error.begin(), error.end());
      return true;
    }
    c.headerDone = true;
    c.got = 0;
    c.blob.assign(blobBytes, '\0');
  }
  // The whole blob is read even for a request refused, so that no unread
  // byte turns the close after the answer into a reset that loses it.
  if (c.got == c.blob.size()) answerRejoin(c, kept, incarnations);
  return true;
}

// After the rendezvous, for a communicator some rank asked it for: answers
// restarted ranks (bootstrapRejoin) with the current table, on the same
// listening socket and behind the same authentication, until
// stopRejoinService or the end of the process. Requests are served side by
// side without blocking: each connection has kRejoinClientMs to finish.
void serveRejoins(tcp::Acceptor& acceptor, RejoinService& svc, RootTable& kept) {
  GCCL_INFO(kLogBootstrap, "rendezvous: keeps serving restarted ranks of %zu", kept.table.size());
  std::vector<uint32_t> incarnations(kept.table.size(), 0);
  std::vector<RejoinClient> clients;
  std::vector<tcp::Admitted> admitted;
  while (!svc.stop.load()) {
    int64_t now = nowMs();
    std::vector<pollfd> pfds{{acceptor.pollFd(), POLLIN, 0}};
    int64_t wake = std::min(now + kStopCheckMs, acceptor.nextDeadlineMs());
    for (const RejoinClient& c : clients) {
      pfds.push_back({c.fd, static_cast<short>(c.answer.empty() ? POLLIN : POLLOUT), 0});
      wake = std::min(wake, c.deadline);
    }
    int n = poll(pfds.data(), pfds.size(), static_cast<int>(std::max<int64_t>(wake - now, 0)));
    now = nowMs();
    // pfds[k + 1] is clients[k]: the clients admitted below come after.
    std::vector<bool> keep(clients.size(), true);
    for (size_t k = 0; n > 0 && k < clients.size(); ++k) {
      RejoinClient& c = clients[k];
      short ev = pfds[k + 1].revents;
      if (ev == 0) continue;
      if (c.answer.empty()) {
        keep[k] = readRejoin(c, kept, &incarnations);
        continue;
      }
      ssize_t w = send(c.fd, c.answer.data() + c.sent, c.answer.size() - c.sent,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (w <= 0) {
        GCCL_WARN(kLogBootstrap, "rendezvous: lost a rejoining rank at %s before it had the answer",
                  c.from.c_str());
        keep[k] = false;
        continue;
      }
      c.sent += static_cast<size_t>(w);
      if (c.sent == c.answer.size()) keep[k] = false;  // answered: done with it
    }
    for (size_t k = 0; k < clients.size(); ++k) {
      if (keep[k] && now >= clients[k].deadline) {
        GCCL_WARN(kLogBootstrap,
                  "rendezvous: closed a rejoining connection from %s that did not finish within "
                  "%lld ms",
                  clients[k].from.c_str(), static_cast<long long>(kRejoinClientMs));
        keep[k] = false;
      }
    }
    size_t kept_ = 0;
    for (size_t k = 0; k < clients.size(); ++k) {
      if (!keep[k]) {
        close(clients[k].fd);
        continue;
      }
      if (kept_ != k) clients[kept_] = std::move(clients[k]);
      ++kept_;
    }
    clients.resize(kept_);
    admitted.clear();
    acceptor.process(now, &admitted);
    for (tcp::Admitted& a : admitted) {
      if (a.info.purpose != tcp::Purpose::kBootstrap) {
        acceptor.reject(&a, "not a rendezvous connection");
        continue;
      }
      RejoinClient c;
      c.fd = a.fd;
      c.from = a.from.toString();
      c.deadline = now + kRejoinClientMs;
      clients.push_back(std::move(c));
    }
  }
  for (RejoinClient& c : clients)
    close(c.fd);
  GCCL_INFO(kLogBootstrap, "rendezvous: stopped serving restarted ranks");
}

void serveRoot(int listenFd, tcp::Credentials creds, std::shared_ptr<RejoinService> svc,
               int64_t deadline) {
  tcp::AcceptorOptions ao;
  ao.who = "rendezvous";
  ao.logSubsys = kLogBootstrap;
  ao.helloTimeoutMs =
      std::min<int64_t>(std::max<int64_t>(deadline - nowMs(), 1), tcp::kMaxHelloWaitMs);
  auto acceptor = std::make_unique<tcp::Acceptor>(creds, ao);
  std::string startError;
  if (acceptor->start(listenFd) != gcclSuccess)
    startError = std::string("the rendezvous cannot serve: ") + threadLastError();
  RootTable kept;
  serveRendezvous(*acceptor, startError, deadline, &kept);
  {
    // Serving rejoins is no answer a failing rank must wait for.
    std::lock_guard<std::mutex> lock(gRootsMutex);
    --gActiveRoots;
    gRootsDone.notify_all();
  }
  if (kept.keepServing) {
    svc->serving = true;
    acceptor->setHelloTimeoutMs(tcp::kMaxHelloWaitMs);
    serveRejoins(*acceptor, *svc, kept);
  }
  acceptor.reset();  // closes the listening socket: later connects are refused
  std::lock_guard<std::mutex> lock(gServicesMutex);
  svc->done = true;
  gServices.erase(std::remove(gServices.begin(), gServices.end(), svc), gServices.end());
  gServicesChanged.notify_all();
}

void startRootThread(int fd, const UniqueIdFields& fields, int64_t deadline) {
  {
    std::lock_guard<std::mutex> lock(gRootsMutex);
    ++gActiveRoots;
  }
  auto svc = std::make_shared<RejoinService>();
  svc->nonce.assign(reinterpret_cast<const char*>(fields.nonce), sizeof(fields.nonce));
  {
    std::lock_guard<std::mutex> lock(gServicesMutex);
    gServices.push_back(svc);
  }
  std::thread(serveRoot, fd, credentialsOf(fields), svc, deadline).detach();
}

}  // namespace

void encodeUniqueId(const UniqueIdFields& f, gcclUniqueId* id) {
  auto* p = reinterpret_cast<uint8_t*>(id->internal);
  memset(p, 0, sizeof(id->internal));
  putLe32(p, kIdMagic);
  putLe16(p + 4, kIdVersion);
  putLe16(p + 6, f.rootAtRank0 ? 1 : 0);
  memcpy(p + 8, f.nonce, 16);
  memcpy(p + 24, f.secret, 32);
  encodeSockAddr(f.root, p + 56);
}

gcclResult_t decodeUniqueId(const gcclUniqueId& id, UniqueIdFields* f) {
  const auto* p = reinterpret_cast<const uint8_t*>(id.internal);
  GCCL_REQUIRE(getLe32(p) == kIdMagic, gcclInvalidArgument,
               "the unique id is not one made by gcclGetUniqueId (bad magic)");
  GCCL_REQUIRE(getLe16(p + 4) == kIdVersion, gcclInvalidArgument,
               "the unique id has version %u; this library reads version %u", getLe16(p + 4),
               kIdVersion);
  UniqueIdFields out;
  out.rootAtRank0 = (getLe16(p + 6) & 1) != 0;
  memcpy(out.nonce, p + 8, 16);
  memcpy(out.secret, p + 24, 32);
  GCCL_CHECK(decodeSockAddr(p + 56, &out.root));
  *f = out;
  return gcclSuccess;
}

tcp::Credentials credentialsOf(const UniqueIdFields& f) {
  tcp::Credentials c;
  uint8_t digest[32];
  sha256(f.nonce, sizeof(f.nonce), digest);
  c.commHash = tcp::getLe64(digest);
  memcpy(c.secret, f.secret, sizeof(c.secret));
  return c;
}

gcclResult_t createUniqueId(int64_t timeoutMs, gcclUniqueId* id) {
  std::string commId = param::CommId();
  if (!commId.empty()) return uniqueIdFromAddress(commId, "", id);
  return createServedUniqueId(param::SocketIfname(), timeoutMs, id);
}

gcclResult_t createServedUniqueId(const std::string& ifnames, int64_t timeoutMs, gcclUniqueId* id) {
  UniqueIdFields f;
  GCCL_CHECK(randomBytes(f.nonce, sizeof(f.nonce)));
  GCCL_CHECK(randomBytes(f.secret, sizeof(f.secret)));
  std::string ifname;
  SockAddr addr;
  GCCL_CHECK(findInterface(ifnames, param::SocketFamily(), &ifname, &addr));
  int fd = -1;
  GCCL_CHECK(tcp::listenOn(addr, &fd, &f.root));
  encodeUniqueId(f, id);
  GCCL_INFO(kLogBootstrap, "rendezvous served at %s (%s)", f.root.toString().c_str(),
            ifname.c_str());
  startRootThread(fd, f, nowMs() + timeoutMs);
  return gcclSuccess;
}

gcclResult_t uniqueIdFromAddress(const std::string& hostPort, const std::string& jobKey,
                                 gcclUniqueId* id) {
  UniqueIdFields f;
  GCCL_CHECK(parseHostPort(hostPort, &f.root));
  f.rootAtRank0 = true;
  std::string secret = param::Secret();
  if (secret.empty()) {
    GCCL_WARN(kLogBootstrap,
              "rendezvous at %s without GCCL_SECRET: connections are not authenticated beyond "
              "knowing the address",
              hostPort.c_str());
  }
  std::string salt = "gccl-nonce|" + f.root.toString() + "|" + jobKey;
  uint8_t digest[32];
  sha256(salt.data(), salt.size(), digest);
  memcpy(f.nonce, digest, sizeof(f.nonce));
  std::string key = "gccl-secret|" + secret + "|" + salt;
  sha256(key.data(), key.size(), f.secret);
  encodeUniqueId(f, id);
  return gcclSuccess;
}

namespace {

// Whether this process has already taken the socket named by
// GCCL_ROOT_LISTEN_FD. The root closes it when its rendezvous ends, after
// which the number may name some unrelated file: a later rendezvous in the
// same process must bind the address itself, never look at that fd again.
std::mutex gInheritedRootMutex;
bool gInheritedRootTaken = false;

bool sameHostOrWildcard(const SockAddr& bound, const SockAddr& root) {
  if (bound.family() == AF_INET) {
    const auto* b = reinterpret_cast<const sockaddr_in*>(&bound.storage);
    const auto* r = reinterpret_cast<const sockaddr_in*>(&root.storage);
    return b->sin_addr.s_addr == htonl(INADDR_ANY) || b->sin_addr.s_addr == r->sin_addr.s_addr;
  }
  const auto* b = reinterpret_cast<const sockaddr_in6*>(&bound.storage);
  const auto* r = reinterpret_cast<const sockaddr_in6*>(&root.storage);
  return IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr) ||
         memcmp(&b->sin6_addr, &r->sin6_addr, sizeof(in6_addr)) == 0;
}

// The listening socket a launcher bound for the root and passed down (see
// GCCL_ROOT_LISTEN_FD in docs/PARAMETERS.md): holding the port from the
// moment it was chosen is what keeps another process from taking it before
// rank 0 starts. *fd stays -1 when there is none to use.
gcclResult_t takeInheritedRoot(const SockAddr& root, int* fd) {
  *fd = -1;
  std::string text = param::RootListenFd();
  if (text.empty()) return gcclSuccess;
  std::lock_guard<std::mutex> lock(gInheritedRootMutex);
  if (gInheritedRootTaken) return gcclSuccess;
  const char* name = "GCCL_ROOT_LISTEN_FD";
  const char* hint = "; unset it, or make sure the program that runs rank 0 inherits that fd";
  char* end = nullptr;
  errno = 0;
  long n = strtol(text.c_str(), &end, 10);
  GCCL_REQUIRE(text[0] >= '0' && text[0] <= '9' && *end == '\0' && errno == 0 && n <= INT_MAX,
               gcclInvalidUsage, "%s=\"%s\" is not a file descriptor number", name, text.c_str());
  int s = static_cast<int>(n);
  GCCL_REQUIRE(fcntl(s, F_GETFD) >= 0, gcclInvalidUsage, "%s=%d is not an open file descriptor%s",
               name, s, hint);
  int type = 0, listening = 0;
  socklen_t len = sizeof(type);
  GCCL_REQUIRE(getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) == 0, gcclInvalidUsage,
               "%s=%d is not a socket (%s)%s", name, s, strerror(errno), hint);
  GCCL_REQUIRE(type == SOCK_STREAM, gcclInvalidUsage, "%s=%d is not a stream (TCP) socket%s", name,
               s, hint);
  len = sizeof(listening);
  GCCL_REQUIRE(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening,
               gcclInvalidUsage, "%s=%d is a socket that is not listening%s", name, s, hint);
  SockAddr bound;
  bound.len = sizeof(bound.storage);
  GCCL_REQUIRE(getsockname(s, bound.sa(), &bound.len) == 0, gcclInvalidUsage,
               "%s=%d: getsockname failed: %s", name, s, strerror(errno));
  GCCL_REQUIRE(bound.family() == root.family(), gcclInvalidUsage,
               "%s=%d is a socket of address family %d, but the rendezvous address %s is of "
               "family %d%s",
               name, s, bound.family(), root.toString().c_str(), root.family(), hint);
  GCCL_REQUIRE(bound.port() == root.port() && sameHostOrWildcard(bound, root), gcclInvalidUsage,
               "%s=%d listens on %s, not on the rendezvous address %s%s", name, s,
               bound.toString().c_str(), root.toString().c_str(), hint);
  // What listenOn would have set: the root's accept loop relies on a
  // non-blocking socket, and the program's own children must not inherit it.
  int flags = fcntl(s, F_GETFL);
  GCCL_REQUIRE(flags >= 0 && fcntl(s, F_SETFL, flags | O_NONBLOCK) == 0 &&
                   fcntl(s, F_SETFD, FD_CLOEXEC) == 0,
               gcclSystemError, "%s=%d: fcntl failed: %s", name, s, strerror(errno));
  gInheritedRootTaken = true;
  *fd = s;
  GCCL_INFO(kLogBootstrap, "rendezvous served at %s on the inherited socket %s=%d",
            bound.toString().c_str(), name, s);
  return gcclSuccess;
}

}  // namespace

gcclResult_t startRootAt(const UniqueIdFields& f, int64_t timeoutMs) {
  int fd = -1;
  GCCL_CHECK(takeInheritedRoot(f.root, &fd));
  if (fd >= 0) {
    startRootThread(fd, f, nowMs() + timeoutMs);
    return gcclSuccess;
  }
  SockAddr bound;
  gcclResult_t r = tcp::listenOn(f.root, &fd, &bound);
  if (r != gcclSuccess)
    return setError(r, "rank 0 cannot serve the rendezvous at %s: %s", f.root.toString().c_str(),
                    threadLastError());
  startRootThread(fd, f, nowMs() + timeoutMs);
  return gcclSuccess;
}

void waitForLocalRoots(int64_t maxMs) {
  std::unique_lock<std::mutex> lock(gRootsMutex);
  gRootsDone.wait_for(lock, std::chrono::milliseconds(maxMs), [] { return gActiveRoots == 0; });
}

namespace {

// Reads the rank table the root sends (appendTable) from body[at, end).
gcclResult_t decodeTable(const std::vector<uint8_t>& body, size_t at, int nranks,
                         std::vector<std::string>* all) {
  size_t len = body.size();
  std::vector<std::string> table(static_cast<size_t>(nranks));
  for (int i = 0; i < nranks; ++i) {
    GCCL_REQUIRE(len - at >= 4, gcclInternalError,
                 "rendezvous sent a table of %zu bytes, too short for %d ranks", len, nranks);
    uint32_t n = getLe32(body.data() + at);
    at += 4;
    GCCL_REQUIRE(n <= kMaxBlobBytes && len - at >= n, gcclInternalError,
                 "rendezvous sent a table whose entry for rank %d does not fit", i);
    table[static_cast<size_t>(i)].assign(reinterpret_cast<const char*>(body.data() + at), n);
    at += n;
  }
  GCCL_REQUIRE(at == len, gcclInternalError, "rendezvous sent %zu bytes more than %d ranks' table",
               len - at, nranks);
  *all = std::move(table);
  return gcclSuccess;
}

// Sends a join or rejoin request (magic, then the layout of kJoinBytes and the
// blob) on an authenticated socket and reads the answer: *status and *body.
gcclResult_t sendRequest(int fd, uint32_t magic, int rank, int nranks, const std::string& blob,
                         int64_t deadlineMs, const char* waiting, uint32_t* status,
                         std::vector<uint8_t>* body) {
  uint8_t join[kJoinBytes];
  putLe32(join, magic);
  putLe32(join + 4, static_cast<uint32_t>(rank));
  putLe32(join + 8, static_cast<uint32_t>(nranks));
  putLe32(join + 12, static_cast<uint32_t>(std::max<int64_t>(deadlineMs - nowMs(), 0)));
  putLe32(join + 16, static_cast<uint32_t>(blob.size()));
  GCCL_CHECK(tcp::writeAllUntil(fd, join, sizeof(join), deadlineMs, "joining the rendezvous"));
  GCCL_CHECK(
      tcp::writeAllUntil(fd, blob.data(), blob.size(), deadlineMs, "joining the rendezvous"));
  uint8_t head[8];
  GCCL_CHECK(tcp::readAllUntil(fd, head, sizeof(head), deadlineMs, waiting));
  *status = getLe32(head);
  uint32_t len = getLe32(head + 4);
  GCCL_REQUIRE(len <= (1u << 24), gcclInternalError, "rendezvous sent an answer of %u bytes", len);
  body->assign(len, 0);
  return tcp::readAllUntil(fd, body->data(), len, deadlineMs, "reading the rank table");
}

}  // namespace

gcclResult_t bootstrapExchange(const UniqueIdFields& f, int rank, int nranks,
                               const std::string& myBlob, int64_t deadlineMs,
                               std::vector<std::string>* all, bool keepServing) {
  GCCL_REQUIRE(myBlob.size() <= kMaxBlobBytes, gcclInternalError,
               "this rank's address blob has %zu bytes, more than the %zu the rendezvous takes",
               myBlob.size(), kMaxBlobBytes);
  tcp::Credentials creds = credentialsOf(f);
  int fd = -1;
  // The root may not be listening yet (rank 0 of an address-based id): retry.
  // A refused handshake says more than a later refused connect: keep it.
  std::string handshakeError;
  for (;;) {
    gcclResult_t r = tcp::startConnect(f.root, &fd);
    if (r == gcclSuccess) {
      tcp::HelloInfo hello;
      hello.purpose = tcp::Purpose::kBootstrap;
      hello.fromRank = rank;
      r = tcp::clientHandshake(fd, creds, hello, deadlineMs);
      if (r == gcclSuccess) break;
      if (strstr(threadLastError(), "handshake") != nullptr) handshakeError = threadLastError();
      close(fd);
      fd = -1;
    }
    if (nowMs() + 100 >= deadlineMs)
      return setError(gcclTimeout, "could not reach the rendezvous at %s: %s",
                      f.root.toString().c_str(),
                      handshakeError.empty() ? threadLastError() : handshakeError.c_str());
    usleep(100 * 1000);
  }
  uint32_t status = kStatusError;
  std::vector<uint8_t> body;
  gcclResult_t r = sendRequest(fd, keepServing ? kJoinKeepMagic : kJoinMagic, rank, nranks, myBlob,
                               deadlineMs, "waiting for the other ranks", &status, &body);
  close(fd);
  if (r != gcclSuccess)
    return setError(r, "rendezvous at %s: %s", f.root.toString().c_str(), threadLastError());
  if (status != kStatusOk)
    return setError(gcclInvalidUsage, "rendezvous failed: %.*s", static_cast<int>(body.size()),
                    reinterpret_cast<const char*>(body.data()));
  return decodeTable(body, 0, nranks, all);
}

gcclResult_t bootstrapRejoin(const UniqueIdFields& f, int rank, int nranks,
                             const std::string& myBlob, int64_t deadlineMs,
                             std::vector<std::string>* all, uint32_t* incarnation) {
  GCCL_REQUIRE(myBlob.size() <= kMaxBlobBytes, gcclInternalError,
               "this rank's address blob has %zu bytes, more than the %zu the rendezvous takes",
               myBlob.size(), kMaxBlobBytes);
  tcp::Credentials creds = credentialsOf(f);
  std::string root = f.root.toString();
  int fd = -1;
  // Unlike a join, a refused connect is not retried: the root serves from
  // the rendezvous on, so nobody listening means it is gone for good. A
  // connection closed before the handshake completed (the root's acceptor
  // making room under a flood, or a root just closing its socket) is tried
  // again, and tells which of the two it was.
  for (;;) {
    gcclResult_t r = tcp::startConnect(f.root, &fd);
    bool accepted = false;
    if (r == gcclSuccess) {
      r = tcp::waitConnected(fd, deadlineMs);
      accepted = r == gcclSuccess;
    }
    if (accepted) {
      tcp::HelloInfo hello;
      hello.purpose = tcp::Purpose::kBootstrap;
      hello.fromRank = rank;
      r = tcp::clientHandshake(fd, creds, hello, deadlineMs);
      if (r == gcclSuccess) break;
    }
    std::string why = threadLastError();
    if (fd >= 0) close(fd);
    fd = -1;
    if (r == gcclRemoteError && !accepted)
      return setError(gcclRemoteError,
                      "cannot rejoin: the rendezvous root at %s is gone (the process that served "
                      "it, rank 0 under launchers, must be alive for a rank to rejoin, and the "
                      "communicator fault-tolerant, so that its root kept serving): %s",
                      root.c_str(), why.c_str());
    if (r == gcclTimeout || nowMs() + 100 >= deadlineMs)
      return setError(gcclTimeout,
                      "cannot rejoin: the rendezvous root at %s did not answer in time: %s",
                      root.c_str(), why.c_str());
    if (r != gcclRemoteError)
      return setError(r, "cannot rejoin through the rendezvous root at %s: %s", root.c_str(),
                      why.c_str());
    usleep(100 * 1000);
  }
  uint32_t status = kStatusError;
  std::vector<uint8_t> body;
  gcclResult_t r = sendRequest(fd, kRejoinMagic, rank, nranks, myBlob, deadlineMs,
                               "waiting for the rendezvous root's answer", &status, &body);
  close(fd);
  if (r != gcclSuccess)
    return setError(r, "cannot rejoin: the rendezvous root at %s: %s", root.c_str(),
                    threadLastError());
  if (status != kStatusOk)
    return setError(gcclInvalidUsage, "cannot rejoin: the rendezvous root at %s refused: %.*s",
                    root.c_str(), static_cast<int>(body.size()),
                    reinterpret_cast<const char*>(body.data()));
  GCCL_REQUIRE(body.size() >= 4, gcclInternalError,
               "the rendezvous root at %s answered a rejoin with %zu bytes, no incarnation",
               root.c_str(), body.size());
  uint32_t inc = getLe32(body.data());
  GCCL_CHECK(decodeTable(body, 4, nranks, all));
  *incarnation = inc;
  return gcclSuccess;
}

void stopRejoinService(const UniqueIdFields& f) {
  std::string nonce(reinterpret_cast<const char*>(f.nonce), sizeof(f.nonce));
  std::unique_lock<std::mutex> lock(gServicesMutex);
  std::vector<std::shared_ptr<RejoinService>> waitFor;
  for (auto& svc : gServices) {
    if (svc->nonce != nonce) continue;
    svc->stop = true;
    // One still in its rendezvous sees the flag when that ends, and never
    // serves; one serving closes its socket within kStopCheckMs: wait for
    // that (bounded), so that a rejoin after this call is refused.
    if (svc->serving) waitFor.push_back(svc);
  }
  gServicesChanged.wait_for(lock, std::chrono::milliseconds(10 * kStopCheckMs), [&] {
    for (auto& svc : waitFor)
      if (!svc->done) return false;
    return true;
  });
}

}  // namespace gccl

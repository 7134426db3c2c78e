// The door of a listening socket: accepts connections and authenticates them
// (handshake.h) without letting anyone who does not know the secret deny
// service to those who do. Used by the rendezvous root, by mesh building
// during init, and (wrapped as a LateListener) by the engine after init,
// where it admits the sockets of restarted ranks of fault-tolerant
// communicators and nothing else.
//
// Unauthenticated connections cost a file descriptor each, so they are
// bounded:
//  - Deadline. A connection that has not sent a valid hello within
//    helloTimeoutMs (a few seconds; a member answers the challenge at once)
//    is closed.
//  - Cap. At most an eighth of RLIMIT_NOFILE (4 to 128; read again at each
//    accept) wait at once, so strangers can never take most of the process's
//    descriptors. At the cap the oldest is closed to make room, but only
//    once it has had kEvictGraceMs to answer; until then the rest stay in
//    the kernel's accept queue. A member in that queue thus gets in behind
//    any number of idle strangers, and one that is accepted has time to
//    prove itself.
//  - Reserve. When accept() fails for want of descriptors (EMFILE, ENFILE),
//    the oldest stranger past its grace is closed and accept() retried; with
//    none to close, the listening socket is left unwatched for kBackoffMs
//    (the connection waits in the kernel's queue; polling a socket that stays
//    readable would spin).
//  - Log. Warnings about turned-away connections are limited to one line a
//    second per kind; the next line says how many were not logged one by one.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/net_if.h"
#include "transports/tcp/handshake.h"
#include "transports/tcp/tcp_connection.h"
#include "transports/transport.h"

namespace gccl::tcp {

inline constexpr int64_t kMaxHelloWaitMs = 3000;
inline constexpr int64_t kEvictGraceMs = 100;
inline constexpr int64_t kBackoffMs = 50;
inline constexpr int64_t kWarnIntervalMs = 1000;

struct AcceptorOptions {
  std::string who = "rank ?";  // how log lines name this end ("rank 3", "rendezvous")
  uint32_t logSubsys = kLogNet;
  int64_t helloTimeoutMs = kMaxHelloWaitMs;
};

// A connection that proved it knows the secret; the caller owns fd.
struct Admitted {
  int fd = -1;
  SockAddr from;
  HelloInfo info;
};

class Acceptor {
 public:
  Acceptor(const Credentials& creds, const AcceptorOptions& options);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Takes ownership of the listening socket `listenFd` (non-blocking).
  gcclResult_t start(int listenFd);
  // For connections accepted from now on (the rendezvous root keeps serving
  // past the deadline its first hello timeout was cut to).
  void setHelloTimeoutMs(int64_t ms) { opt_.helloTimeoutMs = ms > 0 ? ms : kMaxHelloWaitMs; }
  // Readable when process() has work: a connection to accept or hello bytes.
  int pollFd() const { return epollFd_; }
  // Never blocks: accepts, reads hellos, closes whoever failed or ran out of
  // time. Connections that authenticated are appended to *out.
  void process(int64_t nowMs, std::vector<Admitted>* out);
  // When process() must run even if pollFd() stays quiet (a hello deadline,
  // the end of a back-off, a pending summary of warnings); INT64_MAX if never.
  int64_t nextDeadlineMs() const;
  // For callers that refuse an authenticated connection: logs (rate-limited)
  // and closes it.
  void reject(Admitted* conn, const std::string& why);

 private:
  enum Kind { kRejected, kExpired, kEvicted, kAcceptFailed, kKinds };
  struct Pending;
  void acceptReady(int64_t now);
  void evictOldest(int64_t now, const std::string& why);
  void closePending(size_t index);
  bool oldestPastGrace(int64_t now) const;
  size_t cap() const;
  int64_t resumeAtMs() const;
  void updateListenWatch(int64_t now);
  void warn(Kind kind, int64_t now, const std::string& text);
  void flushWarnings(int64_t now, bool all);

  Credentials creds_;  // handshakes point at it: an Acceptor never moves
  AcceptorOptions opt_;
  int listenFd_ = -1;
  int epollFd_ = -1;
  bool listenWatched_ = false;
  size_t cap_ = 4;  // cap() as of the last accept
  int64_t backoffUntilMs_ = 0;
  std::deque<std::unique_ptr<Pending>> pending_;  // oldest first
  struct WarnState {
    int64_t lastMs = 0;
    bool logged = false;
    uint64_t suppressed = 0;
    std::string last;
  };
  WarnState warn_[kKinds];
};

// What a LateListener needs to admit restarted ranks (TcpOptions::acceptRejoins)
// and make their connections as TcpTransport::connect makes them.
struct RejoinAdmission {
  int rank = 0;
  int nranks = 1;
  uint64_t commHash = 0;
  int64_t sockBufBytes = 0;
  std::string congestion = "auto";
  // How long the sockets of one restarted rank may take to arrive, from the
  // first: a live rank opens them back to back.
  int64_t setTimeoutMs = kMaxHelloWaitMs;
  TcpTuning tuning;
  transport::Poller* poller = nullptr;
};

// After init every newcomer is turned away, authenticated or not (the log
// says who it was); the engine polls it through the transport interface.
// Made with a RejoinAdmission, it takes the sockets of restarted ranks
// (Purpose::kRejoin, addressed to this rank, from another rank of the
// communicator): once all sockets of one (rank, incarnation) arrived they
// become a TcpConnection for takeArrival. A set still incomplete after
// setTimeoutMs is dropped (its sockets closed, a warning logged); a newer
// incarnation of the same rank replaces an older incomplete set; a socket of
// an older or already connected incarnation, or one already there, is
// rejected like any other newcomer.
class LateListener final : public transport::Listener {
 public:
  explicit LateListener(std::unique_ptr<Acceptor> acceptor) : acceptor_(std::move(acceptor)) {}
  LateListener(std::unique_ptr<Acceptor> acceptor, const RejoinAdmission& rejoins);
  ~LateListener() override;
  int pollFd() const override { return acceptor_->pollFd(); }
  void poll() override;
  int64_t nextDeadlineMs() const override;
  bool takeArrival(transport::Arrival* out) override;

 private:
  // The sockets of one restarted rank's connection, as they arrive.
  struct RejoinSet {
    int peer = -1;
    uint32_t incarnation = 0;
    int64_t deadlineMs = 0;
    int have = 0;
    std::vector<int> fds;  // by socket index; -1 until it arrived
  };
  void admitRejoin(Admitted* a, int64_t now);
  void dropSet(size_t index, const std::string& why);

  std::unique_ptr<Acceptor> acceptor_;
  bool acceptRejoins_ = false;
  RejoinAdmission rejoin_;
  std::vector<Admitted> admitted_;
  std::vector<RejoinSet> sets_;
  std::vector<uint32_t> connected_;  // per rank: the newest incarnation handed over
  std::deque<transport::Arrival> arrivals_;
};

}  // namespace gccl::tcp

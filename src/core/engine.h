// The progress engine: one thread per communicator that owns its connections,
// drives the transports and runs the operations. It sleeps in epoll_wait when
// there is nothing to do (never spins: a 2-core machine may run 8 ranks).
//
// Caller threads hand it batches of operations through a locked queue and an
// eventfd wake-up; the ops of a batch start together (a group's sends and
// receives), batches run one after another in submission order (every rank
// issues collectives in the same order, so tags match).
//
// Caller-driven progress: a thread that blocks in a call takes over the loop
// itself (drive()) instead of sleeping until the progress thread hands the
// result back; whoever holds driveMutex_ is "the driver" and alone touches
// connections and ops. The progress thread parks while a caller drives, and
// for a short lease after a caller left an idle engine, so that back-to-back
// blocking calls pay no thread hand-off at all.
//
// Failure model: any broken connection, invalid frame or failed operation
// breaks the communicator: every queued and running op completes with the
// error, peers get an abort notice with the reason, and later calls fail
// with that error. Waits have deadlines (T = the communicator's timeout).
// When nothing has moved for 50 ms, the peers an op waits on are probed on
// their control socket, and again from T/2 on every T/4. Each answer carries
// what the peer is doing (its liveness report: the collective it runs, how
// many it has started, its last call), so the waiting rank can report:
//  - at once, a peer that runs the same collective with another signature;
//  - after T, a peer that is alive but has not called the operation (or has
//    moved past it), naming its last call;
//  - after T/2 without an answer, a peer that is stopped, hung or gone;
//  - after 2T, an op that made no progress although every peer answers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/executor.h"
#include "core/membership.h"
#include "core/op.h"
#include "core/request.h"
#include "core/scratch_pool.h"
#include "transports/transport.h"

namespace gccl {

struct EngineOptions {
  int rank = 0;
  int nranks = 1;
  int64_t timeoutMs = 300000;
  bool callerProgress = true;  // blocked callers drive the loop (GCCL_CALLER_PROGRESS)
  int64_t leaseUs = 500;       // GCCL_PROGRESS_LEASE_US
  int64_t spinUs = 0;          // GCCL_SPIN_US
  int64_t spinPauseUs = 0;     // the start of the window that pauses instead of yielding
  bool faultTolerant = false;  // GCCL_FAULT_TOLERANT (membership.h)
  uint32_t incarnation = 0;    // > 0: a restarted rank rejoining (fault-tolerant mode)
  OpParams params;
};

class Engine final : public transport::Poller {
 public:
  explicit Engine(const EngineOptions& options);
  ~Engine() override;

  // Takes the connections (index = peer rank; the entry for this rank is
  // ignored and replaced by a loopback connection) and the transports'
  // listeners that turn late connections away, and starts the progress thread.
  gcclResult_t start(std::vector<std::unique_ptr<transport::Connection>> conns,
                     std::vector<std::unique_ptr<transport::Listener>> listeners);

  // Any thread. The ops of one batch start together. If the communicator is
  // already broken, the ops complete at once with its error.
  void submit(std::vector<std::unique_ptr<Op>> batch);
  // Any thread, blocked on `req` (an op of this engine): runs the progress
  // loop on this thread until `req` completes or `deadlineMs` (monotonic)
  // passes. Returns at once when caller-driven progress is off or the engine
  // is stopping; the caller then waits on the request as usual.
  void drive(gcclRequest* req, int64_t deadlineMs);
  // submit(batch, true) then drive(req, deadlineMs), in one trip through the
  // engine's lock (a blocking call's path).
  void submitAndDrive(std::vector<std::unique_ptr<Op>> batch, gcclRequest* req, int64_t deadlineMs);
  // Any thread: breaks the communicator with `code` and `reason`.
  void abort(gcclResult_t code, const std::string& reason);
  // Waits (up to the timeout) for submitted ops, says goodbye to peers and
  // stops the thread. Safe to call more than once.
  void shutdown();

  // The error that broke the communicator (gcclSuccess while healthy).
  gcclResult_t error(std::string* reason) const;

  // Traffic with one peer since the communicator was created, as the
  // connection counts it (Connection::bytesSent and the others).
  struct PeerCounters {
    uint64_t bytesSent = 0;
    uint64_t bytesReceived = 0;
    uint64_t messagesSent = 0;
    uint64_t messagesReceived = 0;
  };
  // Any thread, 0 <= peer < nranks (this rank: its loopback connection): the
  // counters the driver last published. The driver publishes them before it
  // completes any operation's request, at the end of every full pass of its
  // loop, and before a failure closes the connections, so once a call (or
  // its request) has completed, its traffic is in what this returns, and
  // after the communicator broke the last counts stay readable. Each field
  // is read on its own: while traffic flows, the four may come from two
  // different publications.
  PeerCounters peerCounters(int peer) const;

  // Poller, for connections (driver only).
  gcclResult_t watch(int fd, uint32_t events, void* owner) override;
  void unwatch(int fd) override;
  // Built when a peer asks (a probe is rare; batches are not).
  const std::string& livenessReport() const override;

  const OpParams& params() const { return opt_.params; }
  // Before start(): the spin window of a driving caller (GCCL_SPIN_US,
  // resolved) and how much of it pauses the core before yielding it.
  void setSpin(int64_t spinUs, int64_t pauseUs) {
    opt_.spinUs = spinUs;
    opt_.spinPauseUs = pauseUs;
  }
  // Driver only (from an op's start): services polled on every pass.
  void addService(std::shared_ptr<Service> service) { services_.push_back(std::move(service)); }
  void removeService(Service* service);

  // Before start(): this rank is a restarted one, incarnation `inc` (>= 1),
  // rejoining a running fault-tolerant communicator (membership.h).
  void setIncarnation(uint32_t inc) {
    opt_.incarnation = inc;
    if (membership_)
      membership_ = std::make_unique<Membership>(this, opt_.rank, opt_.nranks, opt_.timeoutMs, inc);
  }

  // For ops (driver only).
  transport::Connection* connection(int peer) { return conns_[peer].get(); }

  // Fault-tolerant mode (driver only unless said otherwise).
  // `peer` failed: its connection closes, running ops go on without it (or
  // fail, for exact collectives), and the survivors' agreement hears of it.
  void peerFailed(int peer, const std::string& reason);
  bool isPeerFailed(int peer) const { return !failReason_[static_cast<size_t>(peer)].empty(); }
  // A restarted `peer` is back: a view the survivors agreed holds its new
  // incarnation (it no longer counts as failed).
  void peerBack(int peer);
  uint32_t incarnationOf(int peer) const {
    return membership_ ? membership_->incarnation(peer) : 0;
  }
  const std::string& failureReason(int peer) const {
    return failReason_[static_cast<size_t>(peer)];
  }
  // The sequence number of the next collective this rank would start.
  uint64_t nextSequence() const { return startedSeqs_; }
  const std::vector<uint8_t>* aliveFor(uint64_t seq) const {
    return membership_ ? membership_->aliveFor(seq) : nullptr;
  }
  // The ranks that join at collective `seq` and their donors (membership.h).
  void joinsAt(uint64_t seq, std::vector<Membership::Join>* out) const {
    if (membership_)
      membership_->joinsAt(seq, out);
    else
      out->clear();
  }
  // A rejoined rank: its collectives go on from `seq` (the survivors' count).
  void adoptSequence(uint64_t seq) {
    startedSeqs_ = seq;
    reportStale_ = true;
  }
  // Null unless in fault-tolerant mode.
  Membership* membership() { return membership_.get(); }
  // Any thread: the failed ranks and why, in the order this rank learned of them.
  std::vector<std::pair<int, std::string>> failedRanks() const;
  ScratchPool& scratchPool() { return scratch_; }
  // Any thread: the executor of this communicator's ops; buffers that must
  // outlive the communicator keep it alive through the shared pointer.
  const std::shared_ptr<Executor>& executor() const { return exec_; }

 private:
  enum class WatchKind : uint8_t { kNone, kWake, kListen, kConn };
  struct WatchEntry {
    WatchKind kind = WatchKind::kNone;
    void* owner = nullptr;
  };

  // The first check of a stall: early enough that a mismatch shows at once.
  static constexpr int64_t kFirstCheckMs = 50;

  void run();
  // drive() once this caller counts among drivers_: runs the loop.
  void driveLoop(gcclRequest* req, int64_t deadlineMs, bool needWake);
  // One pass of the loop (driver only): waits for events up to `waitMs`
  // (-1: until the next deadline), handles them, starts and advances ops.
  // Returns the number of events, or -1 when epoll failed (the engine is broken).
  // With `until`, does not wait once that request is done.
  // A `light` pass (a spinning caller, every connection polled) skips the
  // epoll_wait system call on most passes: see kLightPasses.
  int pollOnce(int waitMs, gcclRequest* until = nullptr, bool light = false);
  // Polls the connections of polled transports; returns how many moved something.
  int pollConnections();
  // Arms every polled connection's wake-up; false if one cannot sleep now.
  bool armPolled();
  bool idleForLease() const;
  gcclResult_t watchAs(int fd, uint32_t events, WatchKind kind, void* owner);
  void handleEvent(int fd, uint32_t events);
  void takeSubmissions();
  void advance();
  void startNextBatch();
  void checkDeadlines(int64_t now);
  // Each pass of a stall: the peers that answered, and what their answers prove.
  void collectAnswers(int64_t now);
  void judgeWaits(int64_t now, const std::vector<const Transfer*>& waiting);
  void probe(int64_t now, const std::vector<const Transfer*>& waiting);

  void fail(gcclResult_t code, const std::string& reason);
  // Driver only: copies every connection's counters to published_.
  void publishCounters();
  // publishCounters() unless it already ran in millisecond `nowMs`.
  void publishCountersEveryMs(int64_t nowMs);
  void completeOp(Op* op, gcclResult_t code, const std::string& reason);
  // Fault-tolerant mode: completes op i of the running batch with an error
  // while the others go on.
  void finishFailedOp(size_t i, gcclResult_t code, const std::string& reason);
  void checkMismatch();
  // Fault-tolerant mode: a restarted rank's connection a listener accepted.
  void takeArrivals(transport::Listener* listener);
  void onArrival(transport::Arrival arrival);
  void noteProgress();
  void connectionFailed(transport::Connection* conn, gcclResult_t code);
  int nextWakeMs(int64_t now) const;
  void wake();

  EngineOptions opt_;
  OpContext ctx_;
  std::vector<std::unique_ptr<transport::Connection>> conns_;
  // The counters of each peer's connection as the driver last published
  // them (publishCounters): written by the driver alone, with relaxed
  // stores (no locked instruction), read by any thread with relaxed loads.
  struct PublishedCounters {
    std::atomic<uint64_t> bytesSent{0};
    std::atomic<uint64_t> bytesReceived{0};
    std::atomic<uint64_t> messagesSent{0};
    std::atomic<uint64_t> messagesReceived{0};
  };
  std::unique_ptr<PublishedCounters[]> published_;
  int64_t lastPublishMs_ = -1;                  // driver only
  std::vector<transport::Connection*> polled_;  // those that need poll() on every pass
  int epollFd_ = -1;
  int wakeFd_ = -1;
  std::vector<std::unique_ptr<transport::Listener>> listeners_;
  std::vector<WatchEntry> watches_;  // by fd
  std::thread thread_;

  // Held by the driver: the progress thread or a caller in drive(). Guards
  // everything marked "driver only" below, and the connections.
  std::mutex driveMutex_;

  // Shared with caller threads.
  mutable std::mutex mutex_;
  std::condition_variable parked_;  // the progress thread waits here while callers drive
  int drivers_ = 0;                 // callers in drive()
  bool threadPolling_ = false;      // the progress thread is (about to be) in epoll_wait
  bool threadParked_ = false;       // the progress thread waits on parked_
  int64_t leaseUntilUs_ = 0;        // the progress thread stays parked until then
  std::deque<std::vector<std::unique_ptr<Op>>> submitted_;
  bool stopRequested_ = false;
  bool abortRequested_ = false;
  gcclResult_t abortCode_ = gcclSuccess;
  std::string abortReason_;
  gcclResult_t error_ = gcclSuccess;
  std::string errorReason_;
  std::atomic<bool> running_{false};
  // Set (under mutex_) whenever submitted_, abortRequested_ or
  // stopRequested_ has something for the driver, so that a polling pass
  // looks without taking the lock.
  std::atomic<bool> inbox_{false};
  std::atomic<bool> stopFlag_{false};
  std::atomic<bool> failed_{false};  // error_ is set (read without the lock while healthy)  //
                                     // stopRequested_, readable without the lock

  // Driver only (the progress thread or a driving caller).
  std::deque<std::vector<std::unique_ptr<Op>>> queue_;
  std::vector<std::unique_ptr<Op>> active_;
  std::vector<std::shared_ptr<Service>> services_;
  std::vector<bool> activeDone_;
  // Fault-tolerant mode: ops of the running batch already completed with an
  // error (a failed peer) while the others go on.
  std::vector<bool> activeCompleted_;
  std::unique_ptr<Membership> membership_;
  std::vector<std::string> failReason_;  // by peer; "" while alive
  // By peer: its connection is a restarted process's, not in a view yet
  // (it still counts as failed, and may fail again).
  std::vector<bool> joiningConn_;
  std::vector<std::pair<int, std::string>> failedList_;  // under mutex_
  int64_t lastProgressMs_ = 0;
  std::vector<int64_t> probeSentMs_;  // by peer; 0 when no probe is out
  int64_t nextProbeMs_ = 0;           // the next periodic probe round of a stall
  // What each peer's latest liveness answer said (decoded), and when it came.
  struct PeerStatus {
    int64_t answeredMs = 0;
    uint64_t started = 0;  // collectives it has started (its next sequence number)
    bool running = false;  // it has operations running
    bool runningCollective = false;
    uint64_t runningSeq = 0;
    transport::MessageMeta runningMeta;
    std::string runningDesc, lastDesc;
  };
  std::vector<PeerStatus> peerStatus_;
  uint64_t startedSeqs_ = 0;                   // collectives (with a sequence number) started here
  transport::MessageMeta lastCollectiveMeta_;  // the last of them, for peers' reports
  uint64_t lastCollectiveSeq_ = 0;
  mutable std::string report_;  // livenessReport(), rebuilt when stale
  mutable bool reportStale_ = true;
  bool broken_ = false;
  bool mismatchChecked_ = false;
  // Every connection to a peer is polled (none needs epoll to be noticed):
  // a spinning caller may skip most epoll_wait calls.
  bool allPolled_ = false;
  int lightPasses_ = 0;  // light passes since the last full one
  // Declared last and in this order: the pool hands its buffers back to the
  // executor before the executor goes.
  std::shared_ptr<Executor> exec_ = makeCpuExecutor();
  ScratchPool scratch_{*exec_};  // driver only
};

}  // namespace gccl

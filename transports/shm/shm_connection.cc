#include "transports/shm/shm_connection.h"

#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstring>

#include "base/check.h"
#include "base/clock.h"

namespace gccl::shm {

using transport::MessageMeta;
using transport::Request;
using transport::RequestState;

namespace {

constexpr size_t kRecordBytes = sizeof(uint64_t) * 8;
constexpr uint32_t kPiece = 1;
constexpr uint32_t kDescriptor = 2;
constexpr uint32_t kInline = 3;  // a whole message of at most kInlineBytes, in the record
constexpr size_t kInlineBytes = 16;
constexpr size_t kInlineAt = 48;  // where in the record (offset and addr)
// A corrupt size must not make a receiver wait for ever.
constexpr uint64_t kMaxMessageBytes = 1ull << 46;
// Single-copy reads per progress call: a 64 MiB message does not hold the
// engine's loop (liveness answers, other peers) for its whole copy.
constexpr size_t kSingleCopyStep = 4 << 20;

size_t roundUp(size_t n) {
  return (n + kRecordBytes - 1) & ~(kRecordBytes - 1);
}

uint64_t lineStamp(uint64_t position) {
  return position / kRecordBytes + 1;
}

}  // namespace

ShmConnection::ShmConnection(const Endpoint& ep, const ShmTuning& tuning, transport::Poller* poller)
    : ep_(ep), tuning_(tuning), poller_(poller), shared_(static_cast<SharedHeader*>(ep.base)) {
  static_assert(sizeof(Record) == kRecordBytes, "record header size");
  static_assert(offsetof(Record, offset) == kInlineAt && kInlineAt + kInlineBytes == kRecordBytes,
                "inline bytes fill the record's end");
  RegionLayout layout = makeLayout(ep.laneBytes[kDataLane], ep.laneBytes[kAsyncLane]);
  auto* base = static_cast<uint8_t*>(ep.base);
  int me = ep.side, other = 1 - ep.side;
  for (int l = 0; l < kLanes; ++l) {
    int mine = me * kLanes + l, theirs = other * kLanes + l;
    out_[l].ring.attach(&shared_->rings[mine], base + layout.ringOffset[mine], layout.laneBytes[l]);
    in_[l].ring.attach(&shared_->rings[theirs], base + layout.ringOffset[theirs],
                       layout.laneBytes[l]);
    in_[l].target = nullptr;
  }
  useCma_ = tuning.cma && ep.peerReadsMe;
}

ShmConnection::~ShmConnection() {
  if (started_) {
    if (socketOpen_) poller_->unwatch(ep_.sock);
    poller_->unwatch(ep_.myBell);
  }
  releaseEndpoint(&ep_);
}

gcclResult_t ShmConnection::start() {
  GCCL_CHECK(poller_->watch(ep_.sock, EPOLLIN, this));
  GCCL_CHECK(poller_->watch(ep_.myBell, EPOLLIN, this));
  started_ = true;
  return gcclSuccess;
}

gcclResult_t ShmConnection::corrupt(const char* what) const {
  return setError(gcclRemoteError, "rank %d broke the shared-memory protocol: %s", ep_.peer, what);
}

gcclResult_t ShmConnection::failed() const {
  return setError(gcclRemoteError, "%s", broken_.c_str());
}

// ---- progress -----------------------------------------------------------------------

gcclResult_t ShmConnection::poll(bool* moved) {
  *moved = false;
  if (!broken_.empty()) return failed();
  std::atomic<uint32_t>& mine = shared_->sleeping[ep_.side].value;
  if (mine.load(std::memory_order_relaxed) != 0) mine.store(0, std::memory_order_relaxed);
  // An engine that keeps polling may not look at its fds for a while: the
  // control socket (a goodbye, an abort, the peer's death, a ping) is read
  // here too, once per tick of the coarse clock (1 to 4 ms).
  if (socketOpen_) {
    int64_t now = coarseNowMs();
    if (now != lastControlCheckMs_) {
      lastControlCheckMs_ = now;
      GCCL_CHECK(readControl());
    }
  }
  return progress(kSingleCopyStep, moved);
}

gcclResult_t ShmConnection::progress(size_t singleCopyBudget, bool* moved) {
  gcclResult_t r = gcclSuccess;
  for (int l = 0; l < kLanes && r == gcclSuccess; ++l)
    r = collectAcks(l, moved);
  for (int l = 0; l < kLanes && r == gcclSuccess; ++l)
    r = flush(l, moved);
  for (int l = 0; l < kLanes && r == gcclSuccess; ++l)
    r = drain(l, &singleCopyBudget, moved);
  wakePeer();
  if (r == gcclSuccess && !socketOpen_) r = checkDeparted();
  return r;
}

bool ShmConnection::armForSleep() {
  if (!broken_.empty()) return false;
  wakePeer();  // a wake-up this side still owes
  for (const InLane& in : in_)
    if (in.state == InState::kSingleCopy) return false;
  // See the header: the flag, then a full fence, then a second look.
  std::atomic<uint32_t>& mine = shared_->sleeping[ep_.side].value;
  mine.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (workVisible()) {
    mine.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

size_t ShmConnection::minWritable(const SendItem& it, size_t capacity) {
  if (it.single || it.len <= kInlineBytes) return kRecordBytes;
  size_t piece = std::min(it.len - it.written, capacity / 4);
  return kRecordBytes + roundUp(std::min(piece, capacity / 16));
}

bool ShmConnection::workVisible() {
  bool bad = false;
  for (InLane& in : in_)
    if ((in.state == InState::kIdle || in.state == InState::kPieces) && recordVisible(in))
      return true;
  for (OutLane& o : out_) {
    if (!o.queue.empty()) {
      size_t need = minWritable(o.queue.front(), o.ring.capacity());
      if (o.ring.writable(need, &bad) >= need) return true;
    }
    if (!o.waiting.empty() && o.ring.acks() != o.acksSeen) return true;
  }
  return bad;  // let poll() report it
}

void ShmConnection::wakePeer() {
  if (!notify_) return;
  notify_ = false;
  // See the header: the ring counters were stored, then a full fence, then the flag.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::atomic<uint32_t>& theirs = shared_->sleeping[1 - ep_.side].value;
  if (theirs.load(std::memory_order_relaxed) == 0 || theirs.exchange(0) == 0) return;
  uint64_t one = 1;
  // EAGAIN only when the counter is near 2^64: the peer is awake then anyway.
  ssize_t n = write(ep_.peerBell, &one, sizeof(one));
  (void)n;
}

// ---- send ---------------------------------------------------------------------------

gcclResult_t ShmConnection::isend(const void* data, size_t len, uint64_t tag, MessageMeta meta,
                                  Request* req) {
  if (!broken_.empty()) return failed();
  GCCL_REQUIRE(socketOpen_ || !peerClosed_, gcclRemoteError,
               "rank %d destroyed its communicator; cannot send it %zu bytes", ep_.peer, len);
  req->state = RequestState::kPending;
  req->bytes = len;
  int lane = transport::isAsyncTag(tag) ? kAsyncLane : kDataLane;
  SendItem it;
  it.req = req;
  it.data = static_cast<const uint8_t*>(data);
  it.len = len;
  it.tag = tag;
  it.meta = meta;
  it.single = useCma_ && len > 0 && len >= tuning_.cmaMinBytes;
  out_[lane].queue.push_back(it);
  // Into the ring at once when it has room: no extra pass for latency (the
  // wake-up, if the peer sleeps, is owed until the next poll: see the header).
  bool moved = false;
  return flush(lane, &moved);
}

void ShmConnection::putRecord(OutLane& o, Record* rec, uint32_t kind) {
  uint8_t* slot = o.ring.slot(0);
  rec->stamp = lineStamp(o.ring.position()) << 8 | kind;
  memcpy(slot + sizeof(uint64_t), reinterpret_cast<const uint8_t*>(rec) + sizeof(uint64_t),
         kRecordBytes - sizeof(uint64_t));
  __atomic_store_n(reinterpret_cast<uint64_t*>(slot), rec->stamp, __ATOMIC_RELEASE);
}

gcclResult_t ShmConnection::flush(int lane, bool* moved) {
  OutLane& o = out_[lane];
  size_t cap = o.ring.capacity();
  while (!o.queue.empty()) {
    SendItem& it = o.queue.front();
    bool bad = false;
    Record rec{};
    rec.tag = it.tag;
    rec.metaInfo = it.meta.info;
    rec.metaCount = it.meta.count;
    rec.total = it.len;
    if (it.single) {
      size_t w = o.ring.writable(kRecordBytes, &bad);
      if (bad) return corrupt("its ring tail is impossible");
      if (w < kRecordBytes) break;
      rec.addr = reinterpret_cast<uintptr_t>(it.data);
      putRecord(o, &rec, kDescriptor);
      o.ring.publish(kRecordBytes);
      o.waiting.push_back({it.req, it.len});
      o.queue.pop_front();
      notify_ = true;
      *moved = true;
      continue;
    }
    if (it.len <= kInlineBytes) {
      // The whole message in the record's line.
      size_t w = o.ring.writable(kRecordBytes, &bad);
      if (bad) return corrupt("its ring tail is impossible");
      if (w < kRecordBytes) break;
      rec.length = it.len;
      if (it.data != nullptr && it.len > 0)
        memcpy(reinterpret_cast<uint8_t*>(&rec) + kInlineAt, it.data, it.len);
      putRecord(o, &rec, kInline);
      o.ring.publish(kRecordBytes);
      bytesSent_ += it.len;
      notify_ = true;
      *moved = true;
      if (it.req != nullptr) {
        it.req->state = RequestState::kDone;
        ++messagesSent_;
      }
      o.queue.pop_front();
      continue;
    }
    // Pieces of at most a quarter of the ring, so that the peer copies one
    // out while the next goes in; a smaller one when the ring is nearly
    // full, but not a sliver.
    size_t piece = std::min(it.len - it.written, cap / 4);
    size_t need = kRecordBytes + roundUp(piece);
    size_t w = o.ring.writable(need, &bad);
    if (bad) return corrupt("its ring tail is impossible");
    if (w < need) {
      if (w < minWritable(it, cap)) break;
      piece = std::min(piece, (w - kRecordBytes) & ~(kRecordBytes - 1));
      need = kRecordBytes + roundUp(piece);
    }
    rec.offset = it.written;
    rec.length = piece;
    // The payload first: the record's stamp publishes both.
    if (it.data != nullptr)
      o.ring.put(kRecordBytes, it.data + it.written, piece);
    else
      o.ring.putZeros(kRecordBytes, piece);
    putRecord(o, &rec, kPiece);
    o.ring.publish(need);
    it.written += piece;
    it.started = true;
    bytesSent_ += piece;
    notify_ = true;
    *moved = true;
    if (it.written == it.len) {
      if (it.req != nullptr) {
        it.req->state = RequestState::kDone;
        ++messagesSent_;
      }
      o.queue.pop_front();
    }
  }
  return gcclSuccess;
}

gcclResult_t ShmConnection::collectAcks(int lane, bool* moved) {
  OutLane& o = out_[lane];
  if (o.waiting.empty()) return gcclSuccess;
  uint64_t acks = o.ring.acks();
  if (acks - o.acksSeen > o.waiting.size()) return corrupt("it acknowledged unsent descriptors");
  for (; o.acksSeen != acks; ++o.acksSeen) {
    Waiting w = o.waiting.front();
    o.waiting.pop_front();
    bytesSent_ += w.len;
    if (w.req != nullptr) {
      w.req->state = RequestState::kDone;
      ++messagesSent_;
    }
    *moved = true;
  }
  return gcclSuccess;
}

void ShmConnection::abandon() {
  auto fail = [](transport::Request* r) {
    if (r != nullptr && r->pending()) r->state = RequestState::kFailed;
  };
  for (RecvEntry* e : posted_)
    fail(e->req);
  for (InLane& in : in_)
    if (in.target != nullptr) fail(in.target->req);
  for (OutLane& o : out_) {
    for (SendItem& it : o.queue)
      fail(it.req);
    for (Waiting& w : o.waiting)
      fail(w.req);
  }
}

bool ShmConnection::hasQueuedSends() const {
  if (!socketOpen_ && peerClosed_) return false;
  for (const OutLane& o : out_)
    if (!o.queue.empty()) return true;
  return false;
}

// ---- receive ------------------------------------------------------------------------

gcclResult_t ShmConnection::irecv(void* data, size_t capacity, uint64_t tag, MessageMeta expect,
                                  Request* req) {
  if (!broken_.empty()) return failed();
  RecvEntry* e = entries_.take();
  e->tag = tag;
  e->buf = static_cast<uint8_t*>(data);
  e->capacity = capacity;
  e->expect = expect;
  e->req = req;
  req->state = RequestState::kPending;
  req->bytes = 0;
  req->metaMismatch = false;
  posted_.push_back(e);
  // A ring may be paused on exactly this message.
  gcclResult_t r = gcclSuccess;
  for (int l = 0; l < kLanes && r == gcclSuccess; ++l) {
    InLane& in = in_[l];
    if (in.state != InState::kPaused || in.rec.tag != tag) continue;
    in.state = InState::kIdle;
    bool moved = false;
    size_t budget = kSingleCopyStep;
    r = drain(l, &budget, &moved);
  }
  wakePeer();
  GCCL_CHECK(r);
  return socketOpen_ ? gcclSuccess : checkDeparted();
}

ShmConnection::RecvEntry* ShmConnection::takePosted(uint64_t tag) {
  // In posting order: the first receive posted with this tag takes the message.
  for (size_t i = 0; i < posted_.size(); ++i) {
    RecvEntry* e = posted_[i];
    if (e->tag != tag) continue;
    posted_.erase(posted_.begin() + static_cast<long>(i));
    return e;
  }
  return nullptr;
}

void ShmConnection::releaseEntry(RecvEntry* e) {
  e->req = nullptr;
  entries_.give(e);
}

gcclResult_t ShmConnection::checkRecord(const InLane& in, const Record& rec) const {
  uint32_t kind = static_cast<uint32_t>(rec.stamp & 0xff);
  bool ok = rec.total <= kMaxMessageBytes;
  if (kind == kPiece)
    ok = ok && rec.offset <= rec.total && rec.length <= rec.total - rec.offset &&
         (rec.length > 0 || rec.total == 0) &&
         kRecordBytes + roundUp(rec.length) <= in.ring.capacity();
  else if (kind == kDescriptor)
    ok = ok && ep_.iReadPeer && rec.total > 0 && rec.length == 0;
  else if (kind == kInline)
    ok = ok && rec.total == rec.length && rec.length <= kInlineBytes;
  else
    ok = false;
  if (in.state == InState::kIdle)
    ok = ok && (kind == kInline || rec.offset == 0);
  else
    ok = ok && kind == kPiece && rec.tag == in.rec.tag && rec.total == in.rec.total &&
         rec.offset == in.got;
  if (ok) return gcclSuccess;
  char what[160];
  snprintf(what, sizeof(what),
           "a record of kind %u, tag 0x%" PRIx64 ", %" PRIu64 " bytes of %" PRIu64 " does not fit",
           kind, rec.tag, rec.length, rec.total);
  return corrupt(what);
}

bool ShmConnection::peekRecord(const InLane& in, Record* rec) {
  const uint8_t* slot = in.ring.slot(0);
  uint64_t stamp = __atomic_load_n(reinterpret_cast<const uint64_t*>(slot), __ATOMIC_ACQUIRE);
  if ((stamp >> 8) != lineStamp(in.ring.position())) return false;
  memcpy(rec, slot, kRecordBytes);
  rec->stamp = stamp;
  return true;
}

bool ShmConnection::recordVisible(const InLane& in) {
  const uint8_t* slot = in.ring.slot(0);
  uint64_t stamp = __atomic_load_n(reinterpret_cast<const uint64_t*>(slot), __ATOMIC_ACQUIRE);
  return (stamp >> 8) == lineStamp(in.ring.position());
}

void ShmConnection::scrubPayload(InLane& in, uint64_t len) {
  uint64_t cap = in.ring.capacity();
  for (uint64_t at = kRecordBytes; at < kRecordBytes + len; at += kRecordBytes) {
    auto* word = reinterpret_cast<uint64_t*>(in.ring.slot(at));
    if ((*word >> 8) == lineStamp(in.ring.position() + at + cap)) *word = 0;
  }
}

// The message at the head (in.rec) meets its receive.
gcclResult_t ShmConnection::beginMessage(InLane& in, RecvEntry* e) {
  const Record& rec = in.rec;
  Request* req = e->req;
  req->peerMeta = {rec.metaInfo, rec.metaCount};
  bool mismatch = e->expect.info != transport::kMetaAny &&
                  (e->expect.info != rec.metaInfo || e->expect.count != rec.metaCount);
  bool tooLarge = !mismatch && rec.total > e->capacity;
  if (!mismatch && !tooLarge) {
    in.target = e;
    in.state = (rec.stamp & 0xff) == kDescriptor ? InState::kSingleCopy : InState::kPieces;
    return gcclSuccess;
  }
  // The receive fails; the message is dropped (a descriptor at once, pieces as they come).
  req->metaMismatch = mismatch;
  if (tooLarge) req->bytes = rec.total;
  req->state = RequestState::kFailed;
  releaseEntry(e);
  in.target = nullptr;
  if ((rec.stamp & 0xff) == kDescriptor)
    finishSingleCopy(in);
  else
    in.state = InState::kPieces;
  if (mismatch) return gcclSuccess;  // the engine reads metaMismatch and peerMeta
  return setError(gcclInvalidUsage,
                  "rank %d sent a message of %" PRIu64 " bytes to a receive buffer of %zu bytes",
                  ep_.peer, rec.total, e->capacity);
}

void ShmConnection::finishSingleCopy(InLane& in) {
  in.ring.consume(kRecordBytes);
  in.ring.ack();
  notify_ = true;
  in.state = InState::kIdle;
  in.target = nullptr;
  in.got = 0;
}

gcclResult_t ShmConnection::singleCopyStep(InLane& in, size_t* budget, bool* moved) {
  RecvEntry* e = in.target;
  while (in.got<in.rec.total&& * budget> 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(in.rec.total - in.got, *budget));
    iovec local{e->buf + in.got, chunk};
    iovec remote{reinterpret_cast<void*>(static_cast<uintptr_t>(in.rec.addr + in.got)), chunk};
    ssize_t n = process_vm_readv(ep_.peerPid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EFAULT;
      e->req->state = RequestState::kFailed;
      releaseEntry(e);
      finishSingleCopy(in);
      // A peer that fails mid-read is usually on its way out (ESRCH once it
      // is gone, EFAULT while its memory is being torn down). It may have
      // said why before it went: an abort notice names the rank at fault,
      // which its absence does not; a bare end of file says it left.
      if (readControl() != gcclSuccess && (!abortReason_.empty() || !socketOpen_)) return failed();
      if (err == ESRCH)
        return setError(gcclRemoteError, "rank %d is gone (its process no longer exists)",
                        ep_.peer);
      // The handshake proved such reads work; a refusal now means the peer
      // changed its credentials or dumpability since.
      return setError(gcclRemoteError,
                      "single-copy read of %" PRIu64 " bytes from rank %d (pid %d) failed: %s",
                      in.rec.total, ep_.peer, static_cast<int>(ep_.peerPid), strerror(err));
    }
    in.got += static_cast<uint64_t>(n);
    *budget -= std::min(*budget, static_cast<size_t>(n));
    bytesReceived_ += static_cast<uint64_t>(n);
    *moved = true;
  }
  if (in.got < in.rec.total) return gcclSuccess;
  e->req->bytes = in.rec.total;
  e->req->state = RequestState::kDone;
  ++messagesReceived_;
  releaseEntry(e);
  finishSingleCopy(in);
  return gcclSuccess;
}

gcclResult_t ShmConnection::drain(int lane, size_t* budget, bool* moved) {
  InLane& in = in_[lane];
  for (;;) {
    if (in.state == InState::kPaused) return gcclSuccess;
    if (in.state == InState::kSingleCopy) {
      GCCL_CHECK(singleCopyStep(in, budget, moved));
      if (in.state == InState::kSingleCopy) return gcclSuccess;
      continue;
    }
    Record rec;
    if (!peekRecord(in, &rec)) return gcclSuccess;
    GCCL_CHECK(checkRecord(in, rec));
    if (in.state == InState::kIdle) {
      in.rec = rec;
      in.got = 0;
      RecvEntry* e = takePosted(rec.tag);
      if (e == nullptr) {
        in.state = InState::kPaused;  // until irecv posts its receive
        return gcclSuccess;
      }
      GCCL_CHECK(beginMessage(in, e));
      if (in.state != InState::kPieces) continue;
    }
    if ((rec.stamp & 0xff) == kInline) {
      if (in.target != nullptr && rec.length > 0)
        memcpy(in.target->buf, reinterpret_cast<const uint8_t*>(&rec) + kInlineAt, rec.length);
      in.ring.consume(kRecordBytes);
    } else {
      if (in.target != nullptr && rec.length > 0)
        in.ring.get(kRecordBytes, in.target->buf + rec.offset, rec.length);
      scrubPayload(in, rec.length);
      in.ring.consume(kRecordBytes + roundUp(rec.length));
    }
    notify_ = true;
    *moved = true;
    bytesReceived_ += rec.length;
    in.got += rec.length;
    if (in.got == in.rec.total) {
      if (in.target != nullptr) {
        in.target->req->bytes = in.rec.total;
        in.target->req->state = RequestState::kDone;
        ++messagesReceived_;
        releaseEntry(in.target);
      }
      in.target = nullptr;
      in.state = InState::kIdle;
    }
  }
}

void ShmConnection::cancel(Request* req) {
  for (size_t i = 0; i < posted_.size(); ++i) {
    if (posted_[i]->req != req) continue;
    releaseEntry(posted_[i]);
    posted_.erase(posted_.begin() + static_cast<long>(i));
    req->state = RequestState::kFailed;
    return;
  }
  for (InLane& in : in_) {
    if (in.target == nullptr || in.target->req != req) continue;
    releaseEntry(in.target);
    in.target = nullptr;  // the rest of the message is dropped
    if (in.state == InState::kSingleCopy) finishSingleCopy(in);
    req->state = RequestState::kFailed;
    wakePeer();
    return;
  }
  // A send: one not yet begun is withdrawn; one partly in the ring (or a
  // descriptor the peer may read) goes on without its request, and without
  // its buffer where that is possible.
  for (OutLane& o : out_) {
    for (auto it = o.queue.begin(); it != o.queue.end(); ++it) {
      if (it->req != req) continue;
      if (!it->started) {
        o.queue.erase(it);
      } else {
        it->req = nullptr;
        it->data = nullptr;
      }
      req->state = RequestState::kFailed;
      return;
    }
    for (Waiting& w : o.waiting)
      if (w.req == req) {
        w.req = nullptr;
        req->state = RequestState::kFailed;
        return;
      }
  }
}

void ShmConnection::pausedFrames(std::vector<std::pair<uint64_t, MessageMeta>>* out) const {
  for (const InLane& in : in_)
    if (in.state == InState::kPaused)
      out->push_back({in.rec.tag, {in.rec.metaInfo, in.rec.metaCount}});
}

// After the peer's goodbye and end of file: what it wrote before is still in
// the rings, but a receive that nothing there can satisfy never will be. (A
// message paused forever ahead of it is a mismatch the engine's liveness
// probe reports: a departed peer never answers.)
gcclResult_t ShmConnection::checkDeparted() {
  if (socketOpen_ || !peerClosed_) return gcclSuccess;
  bool expecting = false;
  for (const RecvEntry* e : posted_)
    expecting = expecting || !transport::isStandingTag(e->tag);
  for (InLane& in : in_) {
    // A message paused at the head waits for its own receive, which may be
    // posted after the one expected here: what follows it still counts.
    if (in.state == InState::kSingleCopy || in.state == InState::kPaused) return gcclSuccess;
    if (in.target != nullptr) expecting = true;
    if (recordVisible(in)) return gcclSuccess;
  }
  if (!expecting) return gcclSuccess;
  return setError(gcclRemoteError,
                  "rank %d destroyed its communicator while this rank still expected data from it",
                  ep_.peer);
}

}  // namespace gccl::shm

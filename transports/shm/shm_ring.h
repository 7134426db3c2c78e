// A single-producer / single-consumer byte ring in memory shared by two
// processes (the shared-memory transport's data path).
//
// The ring is a power-of-two array of bytes plus a control block. head and
// tail count bytes ever written and ever consumed (they never wrap; 2^64
// bytes is centuries), so head - tail is the fill level and the position of
// byte i is i & (capacity - 1). Only the producer stores head and only the
// consumer stores tail; each lives on a cache line of its own, so the two
// sides never write the same line.
//
// Ordering: the producer copies bytes into the array and then stores head
// with release; the consumer loads head with acquire before it reads them.
// The consumer copies bytes out and then stores tail with release; the
// producer loads tail with acquire before it overwrites them. Each side
// caches the other's counter and reloads it only when the cached value says
// there is not enough, so a steady stream touches the other side's line once
// per batch instead of once per record.
//
// A third counter, acks, belongs to the consumer as well (on tail's line):
// the shared-memory connection counts there the single-copy descriptors it
// has taken, so that their senders can complete (shm_connection.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gccl::shm {

inline constexpr size_t kCacheLine = 64;

struct RingControl {
  alignas(kCacheLine) std::atomic<uint64_t> head;  // producer's
  alignas(kCacheLine) std::atomic<uint64_t> tail;  // consumer's
  std::atomic<uint64_t> acks;                      // consumer's (see above)
};
static_assert(sizeof(RingControl) == 2 * kCacheLine, "one cache line per side");
static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "the ring's counters must be lock-free to work across processes");

// Whether `capacity` can be a ring's size: a power of two of at least one cache line.
inline bool validRingCapacity(uint64_t capacity) {
  return capacity >= kCacheLine && (capacity & (capacity - 1)) == 0;
}

class RingProducer {
 public:
  // `ctl` and `data` are in shared memory; `capacity` is validRingCapacity.
  void attach(RingControl* ctl, uint8_t* data, size_t capacity);
  size_t capacity() const { return capacity_; }
  // Bytes that may be written now. Reloads the consumer's tail only when the
  // cached one leaves fewer than `want` free. 0 with *corrupt set when the
  // consumer's counter is impossible (the peer wrote garbage).
  size_t writable(size_t want, bool* corrupt);
  // Copies `len` bytes to `at` bytes past the head (at + len <= writable()),
  // wrapping around the end of the array; visible to the consumer only
  // after publish().
  void put(size_t at, const void* src, size_t len);
  void putZeros(size_t at, size_t len);
  // Makes the next `n` bytes visible to the consumer.
  void publish(size_t n);
  // Everything published has been consumed (reloads the tail).
  bool drained() const { return ctl_->tail.load(std::memory_order_acquire) == head_; }
  // Bytes ever published (the position of the next byte written).
  uint64_t position() const { return head_; }
  // Where the byte `at` past the head lies in the array (a 64-byte record
  // that starts on a 64-byte boundary of the stream never wraps).
  uint8_t* slot(size_t at) const { return data_ + ((head_ + at) & (capacity_ - 1)); }
  // The consumer's acknowledgement counter.
  uint64_t acks() const { return ctl_->acks.load(std::memory_order_acquire); }

 private:
  RingControl* ctl_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  uint64_t head_ = 0;
  uint64_t tailCache_ = 0;
};

class RingConsumer {
 public:
  void attach(RingControl* ctl, uint8_t* data, size_t capacity);
  size_t capacity() const { return capacity_; }
  // Bytes that may be read now. Reloads the producer's head only when the
  // cached one shows fewer than `want`. 0 with *corrupt set when the
  // producer's counter is impossible.
  size_t readable(size_t want, bool* corrupt);
  // Copies `len` bytes from `at` bytes past the tail (at + len <= readable()).
  void get(size_t at, void* dst, size_t len) const;
  // Releases the next `n` bytes to the producer.
  void consume(size_t n);
  // Counts one more acknowledgement (see acks above).
  void ack();
  // Bytes ever consumed (the position of the next byte read).
  uint64_t position() const { return tail_; }
  // Where the byte `at` past the tail lies in the array (see RingProducer::slot).
  uint8_t* slot(size_t at) const { return data_ + ((tail_ + at) & (capacity_ - 1)); }

 private:
  RingControl* ctl_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  uint64_t tail_ = 0;
  uint64_t headCache_ = 0;
  uint64_t acks_ = 0;
};

}  // namespace gccl::shm

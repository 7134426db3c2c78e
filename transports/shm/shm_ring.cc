#include "transports/shm/shm_ring.h"

#include <cstring>

namespace gccl::shm {

void RingProducer::attach(RingControl* ctl, uint8_t* data, size_t capacity) {
  ctl_ = ctl;
  data_ = data;
  capacity_ = capacity;
  head_ = ctl->head.load(std::memory_order_relaxed);
  tailCache_ = ctl->tail.load(std::memory_order_acquire);
}

size_t RingProducer::writable(size_t want, bool* corrupt) {
  uint64_t used = head_ - tailCache_;
  if (capacity_ - used < want) {
    tailCache_ = ctl_->tail.load(std::memory_order_acquire);
    used = head_ - tailCache_;
  }
  // A tail ahead of the head, or more than a ring behind it, cannot come
  // from a correct consumer.
  if (used > capacity_) {
    *corrupt = true;
    return 0;
  }
  return capacity_ - used;
}

void RingProducer::put(size_t at, const void* src, size_t len) {
  size_t pos = (head_ + at) & (capacity_ - 1);
  size_t first = capacity_ - pos < len ? capacity_ - pos : len;
  memcpy(data_ + pos, src, first);
  if (len > first) memcpy(data_, static_cast<const uint8_t*>(src) + first, len - first);
}

void RingProducer::putZeros(size_t at, size_t len) {
  size_t pos = (head_ + at) & (capacity_ - 1);
  size_t first = capacity_ - pos < len ? capacity_ - pos : len;
  memset(data_ + pos, 0, first);
  if (len > first) memset(data_, 0, len - first);
}

void RingProducer::publish(size_t n) {
  head_ += n;
  ctl_->head.store(head_, std::memory_order_release);
}

void RingConsumer::attach(RingControl* ctl, uint8_t* data, size_t capacity) {
  ctl_ = ctl;
  data_ = data;
  capacity_ = capacity;
  tail_ = ctl->tail.load(std::memory_order_relaxed);
  acks_ = ctl->acks.load(std::memory_order_relaxed);
  headCache_ = ctl->head.load(std::memory_order_acquire);
}

size_t RingConsumer::readable(size_t want, bool* corrupt) {
  uint64_t avail = headCache_ - tail_;
  if (avail < want) {
    headCache_ = ctl_->head.load(std::memory_order_acquire);
    avail = headCache_ - tail_;
  }
  if (avail > capacity_) {
    *corrupt = true;
    return 0;
  }
  return avail;
}

void RingConsumer::get(size_t at, void* dst, size_t len) const {
  size_t pos = (tail_ + at) & (capacity_ - 1);
  size_t first = capacity_ - pos < len ? capacity_ - pos : len;
  memcpy(dst, data_ + pos, first);
  if (len > first) memcpy(static_cast<uint8_t*>(dst) + first, data_, len - first);
}

void RingConsumer::consume(size_t n) {
  tail_ += n;
  ctl_->tail.store(tail_, std::memory_order_release);
}

void RingConsumer::ack() {
  ctl_->acks.store(++acks_, std::memory_order_release);
}

}  // namespace gccl::shm

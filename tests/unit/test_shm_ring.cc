// The shared-memory transport's single-producer / single-consumer ring
// (transports/shm/shm_ring.h): empty and full, wrap-around at the end of the
// array, impossible counters from a broken peer, the acknowledgement counter,
// and a producer and a consumer thread moving variable-sized records with
// checksums.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "transports/shm/shm_ring.h"

namespace gccl::shm {
namespace {

struct RingUnderTest {
  explicit RingUnderTest(size_t capacity) : ctl(new RingControl()), data(capacity) {
    producer.attach(ctl.get(), data.data(), capacity);
    consumer.attach(ctl.get(), data.data(), capacity);
  }
  std::unique_ptr<RingControl> ctl;
  std::vector<uint8_t> data;
  RingProducer producer;
  RingConsumer consumer;
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

TEST(ShmRing, CapacityMustBeAPowerOfTwoOfAtLeastALine) {
  EXPECT_TRUE(validRingCapacity(64));
  EXPECT_TRUE(validRingCapacity(1 << 20));
  EXPECT_FALSE(validRingCapacity(0));
  EXPECT_FALSE(validRingCapacity(32));
  EXPECT_FALSE(validRingCapacity(3000));
}

TEST(ShmRing, StartsEmptyFillsUpAndDrains) {
  RingUnderTest r(4096);
  bool bad = false;
  EXPECT_EQ(r.consumer.readable(1, &bad), 0u);
  EXPECT_EQ(r.producer.writable(4096, &bad), 4096u);
  std::vector<uint8_t> in = pattern(4096, 3);
  r.producer.put(0, in.data(), in.size());
  // Not visible before it is published.
  EXPECT_EQ(r.consumer.readable(1, &bad), 0u);
  r.producer.publish(4096);
  EXPECT_EQ(r.producer.writable(1, &bad), 0u);
  EXPECT_EQ(r.consumer.readable(1, &bad), 4096u);
  EXPECT_FALSE(r.producer.drained());
  std::vector<uint8_t> out(4096);
  r.consumer.get(0, out.data(), 1000);
  r.consumer.consume(1000);
  EXPECT_EQ(r.producer.writable(1000, &bad), 1000u);
  r.consumer.get(0, out.data() + 1000, 3096);
  r.consumer.consume(3096);
  EXPECT_EQ(out, in);
  EXPECT_TRUE(r.producer.drained());
  EXPECT_EQ(r.consumer.readable(1, &bad), 0u);
  EXPECT_EQ(r.producer.writable(4096, &bad), 4096u);
  EXPECT_FALSE(bad);
}

TEST(ShmRing, RecordsWrapAroundTheEndOfTheArray) {
  RingUnderTest r(1024);
  bool bad = false;
  // 300-byte records do not divide 1024: they straddle the end at varying offsets.
  for (int i = 0; i < 50; ++i) {
    std::vector<uint8_t> in = pattern(300, static_cast<uint8_t>(i));
    ASSERT_GE(r.producer.writable(300, &bad), 300u);
    r.producer.put(0, in.data(), 100);
    r.producer.put(100, in.data() + 100, 200);
    r.producer.publish(300);
    ASSERT_EQ(r.consumer.readable(300, &bad), 300u);
    std::vector<uint8_t> out(300);
    r.consumer.get(0, out.data(), 300);
    r.consumer.consume(300);
    ASSERT_EQ(out, in) << "record " << i;
  }
  // Zeros wrap too.
  std::vector<uint8_t> junk = pattern(1024, 9);
  r.producer.put(0, junk.data(), 1024);
  r.producer.putZeros(0, 700);
  r.producer.publish(700);
  std::vector<uint8_t> out(700, 1);
  r.consumer.get(0, out.data(), 700);
  EXPECT_EQ(out, std::vector<uint8_t>(700, 0));
  EXPECT_FALSE(bad);
}

TEST(ShmRing, ImpossibleCountersFromTheOtherSideAreCaught) {
  RingUnderTest r(4096);
  bool bad = false;
  r.ctl->head.store(5000);  // more than a ring ahead of the tail
  EXPECT_EQ(r.consumer.readable(1, &bad), 0u);
  EXPECT_TRUE(bad);
  RingUnderTest s(4096);
  bad = false;
  s.ctl->tail.store(64);  // consumed what was never written
  EXPECT_EQ(s.producer.writable(8192, &bad), 0u);
  EXPECT_TRUE(bad);
}

TEST(ShmRing, AcknowledgementsCount) {
  RingUnderTest r(4096);
  EXPECT_EQ(r.producer.acks(), 0u);
  r.consumer.ack();
  r.consumer.ack();
  EXPECT_EQ(r.producer.acks(), 2u);
}

// Records of 4-byte length + payload, sizes from 0 to 9 KiB, through a 16 KiB
// ring, so that the ring is often full and often empty and records wrap.
TEST(ShmRing, ConcurrentProducerAndConsumerAgreeOnEveryByte) {
  constexpr size_t kCapacity = 16 << 10;
  constexpr uint64_t kTotal = 48ull << 20;
  RingUnderTest r(kCapacity);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(25);
  uint64_t sentSum = 0, receivedSum = 0, sentCount = 0, receivedCount = 0;
  bool producerBad = false, consumerBad = false, producerLate = false, consumerLate = false;

  std::thread producer([&] {
    uint64_t state = 12345, sent = 0;
    std::vector<uint8_t> buf(9 << 10);
    while (sent < kTotal) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      uint32_t len = static_cast<uint32_t>((state >> 33) % buf.size());
      for (uint32_t i = 0; i < len; ++i) {
        buf[i] = static_cast<uint8_t>((state >> (i % 56)) + i);
        sentSum = sentSum * 31 + buf[i];
      }
      size_t need = 4 + len;
      // Waits with a yield: another thread is the only one that frees room.
      while (r.producer.writable(need, &producerBad) < need) {
        if (producerBad || std::chrono::steady_clock::now() > deadline) {
          producerLate = !producerBad;
          return;
        }
        std::this_thread::yield();
      }
      r.producer.put(0, &len, 4);
      r.producer.put(4, buf.data(), len);
      r.producer.publish(need);
      sent += need;
      ++sentCount;
    }
    // The end: a record of length UINT32_MAX.
    uint32_t end = UINT32_MAX;
    while (r.producer.writable(4, &producerBad) < 4) {
      if (producerBad || std::chrono::steady_clock::now() > deadline) return;
      std::this_thread::yield();
    }
    r.producer.put(0, &end, 4);
    r.producer.publish(4);
  });

  std::thread consumer([&] {
    std::vector<uint8_t> buf(9 << 10);
    for (;;) {
      while (r.consumer.readable(4, &consumerBad) < 4) {
        if (consumerBad || std::chrono::steady_clock::now() > deadline) {
          consumerLate = !consumerBad;
          return;
        }
        std::this_thread::yield();
      }
      uint32_t len;
      r.consumer.get(0, &len, 4);
      if (len == UINT32_MAX) {
        r.consumer.consume(4);
        return;
      }
      if (len > buf.size() || r.consumer.readable(4 + len, &consumerBad) < 4 + len) {
        consumerBad = true;  // the producer publishes a record whole
        return;
      }
      r.consumer.get(4, buf.data(), len);
      r.consumer.consume(4 + len);
      for (uint32_t i = 0; i < len; ++i)
        receivedSum = receivedSum * 31 + buf[i];
      ++receivedCount;
    }
  });
  producer.join();
  consumer.join();
  EXPECT_FALSE(producerBad);
  EXPECT_FALSE(consumerBad);
  EXPECT_FALSE(producerLate) << "the producer waited past the deadline";
  EXPECT_FALSE(consumerLate) << "the consumer waited past the deadline";
  EXPECT_GT(sentCount, 1000u);
  EXPECT_EQ(receivedCount, sentCount);
  EXPECT_EQ(receivedSum, sentSum);
  EXPECT_TRUE(r.producer.drained());
}

}  // namespace
}  // namespace gccl::shm

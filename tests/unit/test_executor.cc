// The executor (src/core/executor.h) and the scratch pool
// (src/core/scratch_pool.h): the CPU executor gives the same bits as the
// kernels it wraps, refuses memory it cannot reach with an error that names
// the operation and the memory type, and the pool hands out aligned buffers
// that it reuses and grows.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/check.h"
#include "core/executor.h"
#include "core/memory_type.h"
#include "core/scratch_pool.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/mix.h"
#include "kernels/cpu/reduce.h"

namespace gccl {
namespace {

constexpr gcclDataType_t kAllTypes[] = {gcclInt8,    gcclUint8,   gcclInt32,   gcclUint32,
                                        gcclInt64,   gcclUint64,  gcclFloat16, gcclFloat32,
                                        gcclFloat64, gcclBfloat16};
constexpr gcclDataType_t kFloatTypes[] = {gcclFloat16, gcclBfloat16, gcclFloat32, gcclFloat64};
constexpr gcclRedOp_t kAllOps[] = {gcclSum, gcclProd, gcclMax, gcclMin, gcclAvg};
// Odd, and past every vector width, so the kernels' tails run too.
constexpr size_t kCount = 1037;

bool isFloat(gcclDataType_t t) {
  return t == gcclFloat16 || t == gcclBfloat16 || t == gcclFloat32 || t == gcclFloat64;
}

// Random elements of `type`: any bit pattern for integers; for floating
// types mostly ordinary values, with every eighth element random bits (NaN,
// infinities, subnormals and the rest).
std::vector<uint8_t> randomData(gcclDataType_t type, size_t count, std::mt19937_64& rng) {
  size_t elem = elementSize(type);
  std::vector<uint8_t> v(count * elem);
  for (auto& b : v)
    b = static_cast<uint8_t>(rng());
  if (!isFloat(type)) return v;
  std::uniform_real_distribution<double> dist(-100.0, 100.0);
  for (size_t i = 0; i < count; ++i) {
    if (i % 8 == 7) continue;
    double d = dist(rng);
    uint8_t* p = v.data() + i * elem;
    if (type == gcclFloat64) {
      memcpy(p, &d, 8);
    } else if (type == gcclFloat32) {
      float f = static_cast<float>(d);
      memcpy(p, &f, 4);
    } else {
      uint16_t h = type == gcclFloat16 ? kernels::floatToHalf(static_cast<float>(d))
                                       : kernels::floatToBfloat16(static_cast<float>(d));
      memcpy(p, &h, 2);
    }
  }
  return v;
}

class ExecutorTest : public ::testing::Test {
 protected:
  std::shared_ptr<Executor> exec_ = makeCpuExecutor();
  std::mt19937_64 rng_{20240601};
};

TEST_F(ExecutorTest, ReduceGivesTheKernelsBitsForEveryTypeAndReduction) {
  for (gcclDataType_t type : kAllTypes) {
    for (gcclRedOp_t op : kAllOps) {
      SCOPED_TRACE(testing::Message() << "type " << type << " op " << op);
      auto a = randomData(type, kCount, rng_), b = randomData(type, kCount, rng_);
      std::vector<uint8_t> want(a.size()), got(a.size());
      kernels::reduce(want.data(), a.data(), b.data(), kCount, type, op);
      ASSERT_EQ(exec_->reduce(got.data(), a.data(), b.data(), kCount, type, op, MemoryType::kHost),
                gcclSuccess);
      EXPECT_EQ(memcmp(want.data(), got.data(), got.size()), 0);
      // In place, as the ring and the trees reduce.
      std::vector<uint8_t> inPlace = a;
      ASSERT_EQ(exec_->reduce(inPlace.data(), inPlace.data(), b.data(), kCount, type, op,
                              MemoryType::kHost),
                gcclSuccess);
      EXPECT_EQ(memcmp(want.data(), inPlace.data(), inPlace.size()), 0);
    }
  }
}

TEST_F(ExecutorTest, DivideGivesTheKernelsBitsForEveryType) {
  for (gcclDataType_t type : kAllTypes) {
    for (int divisor : {1, 3, 7, 64}) {
      SCOPED_TRACE(testing::Message() << "type " << type << " divisor " << divisor);
      auto src = randomData(type, kCount, rng_);
      std::vector<uint8_t> want(src.size()), got(src.size());
      kernels::divide(want.data(), src.data(), kCount, type, divisor);
      ASSERT_EQ(exec_->divide(got.data(), src.data(), kCount, type, divisor, MemoryType::kHost),
                gcclSuccess);
      EXPECT_EQ(memcmp(want.data(), got.data(), got.size()), 0);
    }
  }
}

TEST_F(ExecutorTest, MixScaleAxpyAndDebiasGiveTheKernelsBits) {
  for (gcclDataType_t type : kFloatTypes) {
    SCOPED_TRACE(testing::Message() << "type " << type);
    auto x = randomData(type, kCount, rng_);
    std::vector<std::vector<uint8_t>> ys;
    for (int j = 0; j < 3; ++j)
      ys.push_back(randomData(type, kCount, rng_));
    const void* yp[3] = {ys[0].data(), ys[1].data(), ys[2].data()};
    const double bs[3] = {0.25, 0.125, -0.5};
    for (int ny = 0; ny <= 3; ++ny) {
      auto want = x, got = x;
      ASSERT_TRUE(kernels::mix(want.data(), 0.375, yp, bs, ny, kCount, type));
      ASSERT_EQ(exec_->mix(got.data(), 0.375, yp, bs, ny, kCount, type, MemoryType::kHost),
                gcclSuccess);
      EXPECT_EQ(want, got) << "mix with " << ny << " messages";
    }
    auto want = x, got = x;
    ASSERT_TRUE(kernels::scale(want.data(), 0.3, kCount, type));
    ASSERT_EQ(exec_->scale(got.data(), 0.3, kCount, type, MemoryType::kHost), gcclSuccess);
    EXPECT_EQ(want, got) << "scale";
    want = got = x;
    ASSERT_TRUE(kernels::axpy(want.data(), 0.7, ys[0].data(), kCount, type));
    ASSERT_EQ(exec_->axpy(got.data(), 0.7, ys[0].data(), kCount, type, MemoryType::kHost),
              gcclSuccess);
    EXPECT_EQ(want, got) << "axpy";
    std::vector<uint8_t> z1(x.size()), z2(x.size());
    ASSERT_TRUE(kernels::debias(z1.data(), x.data(), 0.61, kCount, type));
    ASSERT_EQ(exec_->debias(z2.data(), x.data(), 0.61, kCount, type, MemoryType::kHost),
              gcclSuccess);
    EXPECT_EQ(z1, z2) << "debias";
  }
}

TEST_F(ExecutorTest, CopyHasMemmoveSemantics) {
  std::vector<uint8_t> base(4096);
  for (auto& b : base)
    b = static_cast<uint8_t>(rng_());
  for (long shift : {0L, 1L, 63L, -1L, -200L}) {
    auto want = base, got = base;
    size_t from = 1000, to = static_cast<size_t>(1000 + shift), n = 2000;
    memmove(want.data() + to, want.data() + from, n);
    ASSERT_EQ(
        exec_->copy(got.data() + to, MemoryType::kHost, got.data() + from, MemoryType::kHost, n),
        gcclSuccess);
    EXPECT_EQ(want, got) << "shift " << shift;
  }
  ASSERT_EQ(exec_->copy(nullptr, MemoryType::kHost, nullptr, MemoryType::kHost, 0), gcclSuccess);
}

// Every operation on device memory fails with gcclInvalidUsage, names the
// operation and the memory, and touches nothing.
TEST_F(ExecutorTest, RefusesDeviceMemoryByName) {
  const MemoryType dev = MemoryType::kCuda, host = MemoryType::kHost;
  std::vector<float> x(16, 1.0f), y(16, 2.0f);
  const std::vector<float> before = x;
  const void* ys[1] = {y.data()};
  const double bs[1] = {0.5};
  struct Case {
    const char* name;
    gcclResult_t result;
  };
  void* out = &x;
  Case cases[] = {
      {"copy to", exec_->copy(x.data(), dev, y.data(), host, 64)},
      {"copy from", exec_->copy(x.data(), host, y.data(), dev, 64)},
      {"reduce", exec_->reduce(x.data(), x.data(), y.data(), 16, gcclFloat32, gcclSum, dev)},
      {"divide", exec_->divide(x.data(), x.data(), 16, gcclFloat32, 2, dev)},
      {"mix", exec_->mix(x.data(), 0.5, ys, bs, 1, 16, gcclFloat32, dev)},
      {"scale", exec_->scale(x.data(), 0.5, 16, gcclFloat32, dev)},
      {"axpy", exec_->axpy(x.data(), 0.5, y.data(), 16, gcclFloat32, dev)},
      {"debias", exec_->debias(x.data(), y.data(), 0.5, 16, gcclFloat32, dev)},
      {"allocate", exec_->allocate(64, dev, &out)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.result, gcclInvalidUsage);
  }
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(x, before);
  // The reason of the last one, as the caller would read it.
  std::string why = threadLastError();
  EXPECT_NE(why.find("allocate"), std::string::npos) << why;
  EXPECT_NE(why.find("CUDA device memory"), std::string::npos) << why;
  clearThreadLastError();
  ASSERT_EQ(exec_->reduce(x.data(), x.data(), y.data(), 16, gcclFloat32, gcclMax, dev),
            gcclInvalidUsage);
  why = threadLastError();
  EXPECT_NE(why.find("reduce"), std::string::npos) << why;
  EXPECT_NE(why.find("CUDA device memory"), std::string::npos) << why;
}

// What the kernels refuse (and leave untouched) becomes an error, instead
// of a result that was never computed.
TEST_F(ExecutorTest, ReportsWhatTheKernelsRefuse) {
  std::vector<float> x(8, 1.0f);
  const std::vector<float> before = x;
  EXPECT_EQ(exec_->reduce(x.data(), x.data(), x.data(), 8, gcclFloat32,
                          static_cast<gcclRedOp_t>(99), MemoryType::kHost),
            gcclInvalidArgument);
  EXPECT_EQ(exec_->divide(x.data(), x.data(), 8, gcclFloat32, 0, MemoryType::kHost),
            gcclInvalidArgument);
  EXPECT_EQ(exec_->scale(x.data(), 2.0, 8, gcclInt32, MemoryType::kHost), gcclInvalidArgument);
  EXPECT_EQ(exec_->axpy(x.data(), 2.0, x.data(), 8, gcclFloat32, MemoryType::kHost),
            gcclInvalidArgument);
  std::vector<float> z(8, 0.0f);
  // 1e-300 is a valid double weight but vanishes in float32.
  EXPECT_EQ(exec_->debias(z.data(), x.data(), 1e-300, 8, gcclFloat32, MemoryType::kHost),
            gcclInvalidArgument);
  EXPECT_NE(std::string(threadLastError()).find("debias"), std::string::npos);
  EXPECT_EQ(x, before);
  EXPECT_EQ(z, std::vector<float>(8, 0.0f));
}

TEST_F(ExecutorTest, ReachesHostMemoryOnly) {
  EXPECT_TRUE(exec_->reaches(MemoryType::kHost));
  EXPECT_FALSE(exec_->reaches(MemoryType::kCuda));
  EXPECT_TRUE(defaultExecutor().reaches(MemoryType::kHost));
}

// The public helper runs on the executor too: what it refuses is an error,
// not a z left as it was.
TEST(PushSumDebias, ReportsAWeightThatVanishesInFloat32) {
  std::vector<float> x(8, 3.0f), z(8, 0.0f);
  ASSERT_EQ(gcclPushSumDebias(x.data(), z.data(), 8, gcclFloat32, 0.5), gcclSuccess);
  EXPECT_EQ(z, std::vector<float>(8, 6.0f));
  EXPECT_EQ(gcclPushSumDebias(x.data(), z.data(), 8, gcclFloat32, 1e-300), gcclInvalidArgument);
  std::string why = threadLastError();
  EXPECT_NE(why.find("gcclPushSumDebias"), std::string::npos) << why;
  EXPECT_NE(why.find("1e-300"), std::string::npos) << why;
  // float64 data divides by the weight as it is.
  std::vector<double> xd(4, 1e-300), zd(4, 0.0);
  ASSERT_EQ(gcclPushSumDebias(xd.data(), zd.data(), 4, gcclFloat64, 1e-300), gcclSuccess);
  EXPECT_EQ(zd, std::vector<double>(4, 1.0));
}

TEST_F(ExecutorTest, BuffersAreAlignedAndKeepTheirExecutorAlive) {
  std::weak_ptr<Executor> weak = exec_;
  ExecBuffer a;
  ASSERT_EQ(a.allocate(exec_, 100, MemoryType::kHost), gcclSuccess);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 64, 0u);
  EXPECT_EQ(a.size(), 100u);
  memset(a.data(), 7, a.size());
  ExecBuffer b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data()[99], 7);
  exec_.reset();
  EXPECT_FALSE(weak.expired());  // b still returns its memory to it
  b.reset();
  EXPECT_TRUE(weak.expired());
  ExecBuffer c;
  EXPECT_EQ(c.allocate(makeCpuExecutor(), 8, MemoryType::kCuda), gcclInvalidUsage);
  EXPECT_EQ(c.data(), nullptr);
}

TEST(MemoryTypeOf, HostBuffersAreHostMemory) {
  std::vector<int> v(4);
  int local = 0;
  EXPECT_EQ(memoryTypeOf(v.data()), MemoryType::kHost);
  EXPECT_EQ(memoryTypeOf(&local), MemoryType::kHost);
  EXPECT_EQ(memoryTypeOf(nullptr), MemoryType::kHost);
}

// ---- the scratch pool ----------------------------------------------------------

TEST(ScratchPool, HandsOutAlignedBuffersForAnySize) {
  auto exec = makeCpuExecutor();
  ScratchPool pool(*exec);
  for (size_t bytes :
       {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{1000}, size_t{1} << 20}) {
    void* p = nullptr;
    ASSERT_EQ(pool.get(bytes, MemoryType::kHost, &p), gcclSuccess);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << bytes;
    EXPECT_GE(pool.capacity(MemoryType::kHost), bytes);
    EXPECT_EQ(pool.capacity(MemoryType::kHost) % 64, 0u);
    memset(p, 0xab, bytes);  // all of it is usable
  }
}

TEST(ScratchPool, ReusesItsBufferAndGrowsWhenAskedForMore) {
  auto exec = makeCpuExecutor();
  ScratchPool pool(*exec);
  EXPECT_EQ(pool.capacity(MemoryType::kHost), 0u);
  void* first = nullptr;
  ASSERT_EQ(pool.get(4096, MemoryType::kHost, &first), gcclSuccess);
  EXPECT_EQ(pool.capacity(MemoryType::kHost), 4096u);
  for (size_t bytes : {size_t{1}, size_t{100}, size_t{4096}}) {
    void* again = nullptr;
    ASSERT_EQ(pool.get(bytes, MemoryType::kHost, &again), gcclSuccess);
    EXPECT_EQ(again, first) << "a request of " << bytes << " bytes fits the buffer it has";
  }
  EXPECT_EQ(pool.capacity(MemoryType::kHost), 4096u);
  void* grown = nullptr;
  ASSERT_EQ(pool.get(4097, MemoryType::kHost, &grown), gcclSuccess);
  EXPECT_EQ(pool.capacity(MemoryType::kHost), 4160u);  // rounded up to 64
  EXPECT_EQ(reinterpret_cast<uintptr_t>(grown) % 64, 0u);
  memset(grown, 1, 4097);
  void* after = nullptr;
  ASSERT_EQ(pool.get(10, MemoryType::kHost, &after), gcclSuccess);
  EXPECT_EQ(after, grown);  // growth is kept
  pool.release();
  EXPECT_EQ(pool.capacity(MemoryType::kHost), 0u);
}

TEST(ScratchPool, KeepsOneBufferPerMemoryTypeAndRefusesWhatTheExecutorCannotReach) {
  auto exec = makeCpuExecutor();
  ScratchPool pool(*exec);
  void* host = nullptr;
  ASSERT_EQ(pool.get(256, MemoryType::kHost, &host), gcclSuccess);
  clearThreadLastError();
  void* dev = &host;
  EXPECT_EQ(pool.get(256, MemoryType::kCuda, &dev), gcclInvalidUsage);
  EXPECT_EQ(dev, nullptr);
  std::string why = threadLastError();
  EXPECT_NE(why.find("CUDA device memory"), std::string::npos) << why;
  EXPECT_EQ(pool.capacity(MemoryType::kCuda), 0u);
  // The host buffer is untouched by the refused request.
  void* again = nullptr;
  ASSERT_EQ(pool.get(256, MemoryType::kHost, &again), gcclSuccess);
  EXPECT_EQ(again, host);
  EXPECT_EQ(pool.capacity(MemoryType::kHost), 256u);
}

}  // namespace
}  // namespace gccl

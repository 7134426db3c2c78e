// Device reductions (kernels/cuda/reduce.cuh) checked bit for bit against the
// CPU kernels (kernels/cpu/reduce.h), which have their own reference tests:
// ranks with host and device buffers must produce identical bytes.
//
// Every run starts from buffers filled with 0xFF around and under the output
// and then compares each whole device buffer, guards included, so a write past
// the end, a write into an input or an element left unwritten all show.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/half.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/reduce.cuh"

namespace gccl::cuda {
namespace {

using Bytes = std::vector<uint8_t>;

const gcclDataType_t kTypes[] = {gcclInt8,   gcclUint8,   gcclInt32,   gcclUint32,  gcclInt64,
                                 gcclUint64, gcclFloat16, gcclFloat32, gcclFloat64, gcclBfloat16};
const gcclRedOp_t kOps[] = {gcclSum, gcclProd, gcclMax, gcclMin, gcclAvg};
const size_t kSizes[] = {0, 1, 7, 1000, (size_t{1} << 20) + 3};
const int kDivisors[] = {1, 2, 3, 7, 1000, INT_MAX};
// Guard bytes on both sides of every pointer; a multiple of 16 keeps
// unshifted pointers on a vector boundary.
constexpr size_t kGuard = 64;

std::string typeName(gcclDataType_t t) {
  const char* names[] = {"int8",   "uint8",   "int32",   "uint32",  "int64",
                         "uint64", "float16", "float32", "float64", "bfloat16"};
  return names[t];
}
std::string opName(gcclRedOp_t op) {
  const char* names[] = {"sum", "prod", "max", "min", "avg"};
  return names[op];
}

#define ASSERT_CUDA(call)                                                           \
  do {                                                                              \
    const cudaError_t err_ = (call);                                                \
    ASSERT_EQ(err_, cudaSuccess) << #call << ": " << cudaGetErrorName(err_) << " (" \
                                 << cudaGetErrorString(err_) << ")";                \
  } while (0)

// Empty when a device is usable, else why not.
std::string noDeviceReason() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  if (n == 0) return "cudaGetDeviceCount found 0 devices";
  return "";
}

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { err_ = cudaMalloc(&p_, bytes); }
  ~DeviceBuffer() {
    if (p_ != nullptr) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  uint8_t* get() const { return static_cast<uint8_t*>(p_); }
  cudaError_t error() const { return err_; }

 private:
  void* p_ = nullptr;
  cudaError_t err_;
};

// ---- Inputs -----------------------------------------------------------------------

// Values where implementations disagree if they disagree at all: zeros of
// both signs, infinities, NaNs (quiet, signalling, with payloads, negative),
// subnormals, the largest finite values, and overflow on sum or product.
std::vector<uint64_t> specials(gcclDataType_t t) {
  switch (t) {
    case gcclFloat16:
      return {0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D55,
              0xFFFF, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00,
              0xBC00, 0x7800, 0x5BFF, 0x0200, 0x3C01, 0x1400};
    case gcclBfloat16:
      return {0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x7FAA,
              0xFFFF, 0x0001, 0x8001, 0x007F, 0x0080, 0x7F7F, 0xFF7F, 0x3F80,
              0xBF80, 0x7F00, 0x5F7F, 0x0040, 0x3F81, 0x2000};
    case gcclFloat32:
      return {0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
              0x7F800001, 0x7FA5A5A5, 0xFFFFFFFF, 0x00000001, 0x80000001, 0x007FFFFF,
              0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000, 0x7F000000,
              0x5F7FFFFF, 0x00400000, 0x3F800001, 0x1F800000};
    case gcclFloat64:
      return {0x0000000000000000, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
              0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0x7FF5A5A5A5A5A5A5,
              0xFFFFFFFFFFFFFFFF, 0x0000000000000001, 0x8000000000000001, 0x000FFFFFFFFFFFFF,
              0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x3FF0000000000000,
              0xBFF0000000000000, 0x7FE0000000000000, 0x5FEFFFFFFFFFFFFF, 0x0008000000000000,
              0x3FF0000000000001, 0x1FF0000000000000};
    default: {
      // Integers: 0, ±1, the extremes of both signednesses, truncated to size.
      const size_t bits = kernels::typeSize(t) * 8;
      const uint64_t top = uint64_t{1} << (bits - 1);
      return {0, 1, ~uint64_t{0}, top, top - 1, top + 1, 2, top >> 1};
    }
  }
}

void putElement(Bytes& buf, size_t i, size_t size, uint64_t bits) {
  std::memcpy(buf.data() + i * size, &bits, size);  // little-endian: the low bytes
}

uint64_t getElement(const uint8_t* p, size_t size) {
  uint64_t bits = 0;
  std::memcpy(&bits, p, size);
  return bits;
}

// Bits of a moderate value of `t`: sums and products of these round, where
// random bit patterns would mostly just return the larger operand.
uint64_t moderate(gcclDataType_t t, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> value(-8.0, 8.0);
  std::uniform_int_distribution<int> scale(-12, 12);
  const double v = std::ldexp(value(rng), scale(rng));
  switch (t) {
    case gcclFloat16:
      return kernels::floatToHalf(static_cast<float>(v));
    case gcclBfloat16:
      return kernels::floatToBfloat16(static_cast<float>(v));
    case gcclFloat32:
      return kernels::floatToBits(static_cast<float>(v));
    case gcclFloat64:
      return kernels::doubleToBits(v);
    default:
      return static_cast<uint64_t>(static_cast<int64_t>(v));
  }
}

Bytes makeInput(gcclDataType_t t, size_t count, uint64_t seed) {
  const size_t size = kernels::typeSize(t);
  const std::vector<uint64_t> special = specials(t);
  std::mt19937_64 rng(seed);
  Bytes out(count * size);
  for (size_t i = 0; i < count; ++i) {
    const uint64_t r = rng();
    switch (r % 8) {
      case 0:
      case 1:
        putElement(out, i, size, rng());
        break;
      case 2:
        putElement(out, i, size, special[(r >> 8) % special.size()]);
        break;
      default:
        putElement(out, i, size, moderate(t, rng));
        break;
    }
  }
  return out;
}

// ---- One run ------------------------------------------------------------------------

// Where the pointers of one call live. Aliased pointers share a buffer and an
// offset; an offset of one element moves a pointer off its 16-byte boundary.
struct Layout {
  const char* name;
  size_t dstOff, aOff, bOff;  // in elements
  bool dstIsA, dstIsB, bIsA;
};

const Layout kReduceLayouts[] = {
    {"separate", 0, 0, 0, false, false, false},
    {"dst==a", 0, 0, 0, true, false, false},
    {"dst==b", 0, 0, 0, false, true, false},
    {"dst==a==b", 0, 0, 0, true, false, true},
    {"a==b", 0, 0, 0, false, false, true},
    {"all+1", 1, 1, 1, false, false, false},  // vectors after a scalar head
    {"a+1", 0, 1, 0, false, false, false},    // no common boundary: all scalar
    {"dst+1", 1, 0, 0, false, false, false},
    {"dst==a+1", 1, 1, 0, true, false, false},
};
// For divide, "a" is the source and b is unused.
const Layout kDivideLayouts[] = {
    {"separate", 0, 0, 0, false, false, false}, {"dst==src", 0, 0, 0, true, false, false},
    {"all+1", 1, 1, 0, false, false, false},    {"src+1", 0, 1, 0, false, false, false},
    {"dst+1", 1, 0, 0, false, false, false},    {"dst==src+1", 1, 1, 0, true, false, false},
};

struct Call {
  bool divide;
  gcclRedOp_t op;
  int divisor;
};

std::string describe(gcclDataType_t t, const Call& c, size_t count, const Layout& l) {
  std::ostringstream s;
  s << typeName(t) << " " << (c.divide ? "divide by " + std::to_string(c.divisor) : opName(c.op))
    << ", count " << count << ", layout " << l.name;
  return s.str();
}

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

// Runs one call on the device and compares every byte of every buffer with
// what the CPU kernel produces. `b` is ignored for divide and for a==b.
void runAndCompare(gcclDataType_t t, const Call& call, const Bytes& a, const Bytes& b, size_t count,
                   const Layout& l, cudaStream_t stream) {
  const size_t size = kernels::typeSize(t);
  const size_t bytes = count * size;
  const size_t cap = bytes + 2 * kGuard;
  const Bytes& bData = l.bIsA ? a : b;

  // Host images of the three buffers: 0xFF, with the inputs in place.
  const size_t aPos = kGuard + l.aOff * size;
  const size_t bPos = kGuard + (l.bIsA ? l.aOff : l.bOff) * size;
  const size_t dPos = kGuard + (l.dstIsA ? l.aOff : l.dstIsB ? l.bOff : l.dstOff) * size;
  Bytes image[3] = {Bytes(cap, 0xFF), Bytes(cap, 0xFF), Bytes(cap, 0xFF)};
  enum { kA = 0, kB = 1, kD = 2 };
  const int bBuf = l.bIsA ? kA : kB;
  const int dBuf = l.dstIsA ? kA : l.dstIsB ? kB : kD;
  std::memcpy(image[kA].data() + aPos, a.data(), bytes);
  if (!call.divide && !l.bIsA) std::memcpy(image[kB].data() + bPos, b.data(), bytes);

  Bytes expected[3] = {image[kA], image[kB], image[kD]};
  Bytes ref(bytes);
  if (call.divide) {
    kernels::divide(ref.data(), a.data(), count, t, call.divisor);
  } else {
    kernels::reduce(ref.data(), a.data(), bData.data(), count, t, call.op);
  }
  std::memcpy(expected[dBuf].data() + dPos, ref.data(), bytes);

  DeviceBuffer dev[3] = {DeviceBuffer(cap), DeviceBuffer(cap), DeviceBuffer(cap)};
  for (int i = 0; i < 3; ++i) {
    ASSERT_CUDA(dev[i].error());
    ASSERT_CUDA(
        cudaMemcpyAsync(dev[i].get(), image[i].data(), cap, cudaMemcpyHostToDevice, stream));
  }
  uint8_t* dA = dev[kA].get() + aPos;
  uint8_t* dB = dev[bBuf].get() + bPos;
  uint8_t* dD = dev[dBuf].get() + dPos;
  if (call.divide) {
    ASSERT_CUDA(launchDivide(dD, dA, count, t, call.divisor, stream));
  } else {
    ASSERT_CUDA(launchReduce(dD, dA, dB, count, t, call.op, stream));
  }
  Bytes got[3] = {Bytes(cap), Bytes(cap), Bytes(cap)};
  for (int i = 0; i < 3; ++i) {
    ASSERT_CUDA(cudaMemcpyAsync(got[i].data(), dev[i].get(), cap, cudaMemcpyDeviceToHost, stream));
  }
  ASSERT_CUDA(cudaStreamSynchronize(stream));

  const char* bufName[3] = {"a", "b", "dst"};
  for (int i = 0; i < 3; ++i) {
    if (std::memcmp(got[i].data(), expected[i].data(), cap) == 0) continue;
    size_t at = 0;
    while (got[i][at] == expected[i][at])
      ++at;
    std::ostringstream msg;
    msg << describe(t, call, count, l) << ": buffer " << bufName[i] << " differs at byte " << at;
    if (i == dBuf && at >= dPos && at < dPos + bytes) {
      const size_t e = (at - dPos) / size;
      msg << " = element " << e << ": a " << hex(getElement(a.data() + e * size, size));
      if (!call.divide) msg << ", b " << hex(getElement(bData.data() + e * size, size));
      msg << ", want " << hex(getElement(ref.data() + e * size, size)) << ", got "
          << hex(getElement(got[i].data() + dPos + e * size, size));
    } else {
      msg << " (outside the output: want " << hex(expected[i][at]) << ", got " << hex(got[i][at])
          << ")";
    }
    ADD_FAILURE() << msg.str();
  }
}

// ---- Tests --------------------------------------------------------------------------

class CudaTest : public testing::Test {
 protected:
  void SetUp() override {
    const std::string why = noDeviceReason();
    if (!why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
    ASSERT_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
};

class CudaReduceByType : public CudaTest, public testing::WithParamInterface<gcclDataType_t> {};

TEST_P(CudaReduceByType, ReduceMatchesCpuForEveryOpSizeAndLayout) {
  const gcclDataType_t t = GetParam();
  for (size_t count : kSizes) {
    const Bytes a = makeInput(t, count, 1000 + count);
    const Bytes b = makeInput(t, count, 2000 + count);
    for (gcclRedOp_t op : kOps) {
      for (const Layout& l : kReduceLayouts) {
        ASSERT_NO_FATAL_FAILURE(runAndCompare(t, {false, op, 0}, a, b, count, l, stream_));
      }
    }
  }
}

TEST_P(CudaReduceByType, DivideMatchesCpuForEveryDivisorSizeAndLayout) {
  const gcclDataType_t t = GetParam();
  for (size_t count : kSizes) {
    const Bytes src = makeInput(t, count, 3000 + count);
    for (int divisor : kDivisors) {
      for (const Layout& l : kDivideLayouts) {
        ASSERT_NO_FATAL_FAILURE(
            runAndCompare(t, {true, gcclSum, divisor}, src, src, count, l, stream_));
      }
    }
  }
}

// Every pair of special values, in both orders: NaN propagation, signed
// zeros, infinities, overflow and subnormals through every op.
TEST_P(CudaReduceByType, SpecialValuePairsMatchCpu) {
  const gcclDataType_t t = GetParam();
  const size_t size = kernels::typeSize(t);
  const std::vector<uint64_t> s = specials(t);
  const size_t count = s.size() * s.size();
  Bytes a(count * size);
  Bytes b(count * size);
  for (size_t i = 0; i < s.size(); ++i) {
    for (size_t j = 0; j < s.size(); ++j) {
      putElement(a, i * s.size() + j, size, s[i]);
      putElement(b, i * s.size() + j, size, s[j]);
    }
  }
  for (gcclRedOp_t op : kOps) {
    ASSERT_NO_FATAL_FAILURE(
        runAndCompare(t, {false, op, 0}, a, b, count, kReduceLayouts[0], stream_));
  }
  for (int divisor : kDivisors) {
    ASSERT_NO_FATAL_FAILURE(
        runAndCompare(t, {true, gcclSum, divisor}, a, a, count, kDivideLayouts[0], stream_));
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CudaReduceByType, testing::ValuesIn(kTypes),
                         [](const testing::TestParamInfo<gcclDataType_t>& info) {
                           return typeName(info.param);
                         });

// Every float16 and bfloat16 bit pattern as a, against specials and random b:
// the conversion intrinsics and the NaN handling around them see all inputs.
TEST_F(CudaTest, EveryHalfBitPatternMatchesCpu) {
  for (gcclDataType_t t : {gcclFloat16, gcclBfloat16}) {
    const std::vector<uint64_t> special = specials(t);
    std::mt19937_64 rng(42);
    const size_t rounds = 16;
    const size_t count = rounds * 65536;
    Bytes a(count * 2);
    Bytes b(count * 2);
    for (size_t i = 0; i < count; ++i) {
      const size_t round = i / 65536;
      putElement(a, i, 2, i % 65536);
      putElement(b, i, 2,
                 round < special.size() / 2 ? special[(i + round) % special.size()] : rng());
    }
    for (gcclRedOp_t op : kOps) {
      ASSERT_NO_FATAL_FAILURE(
          runAndCompare(t, {false, op, 0}, a, b, count, kReduceLayouts[0], stream_));
    }
    for (int divisor : {3, 7, 1000}) {
      ASSERT_NO_FATAL_FAILURE(
          runAndCompare(t, {true, gcclSum, divisor}, a, a, count, kDivideLayouts[0], stream_));
    }
  }
}

TEST_F(CudaTest, InvalidArgumentsAreRefusedWithoutLaunching) {
  DeviceBuffer buf(4096);
  ASSERT_CUDA(buf.error());
  uint8_t* p = buf.get();
  const auto badType = static_cast<gcclDataType_t>(gcclNumTypes);
  const auto negType = static_cast<gcclDataType_t>(-1);
  const auto badOp = static_cast<gcclRedOp_t>(gcclNumOps);
  const auto negOp = static_cast<gcclRedOp_t>(-1);
  EXPECT_EQ(launchReduce(p, p, p, 16, badType, gcclSum, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(p, p, p, 16, negType, gcclSum, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(p, p, p, 16, gcclFloat32, badOp, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(p, p, p, 16, gcclFloat32, negOp, stream_), cudaErrorInvalidValue);
  // An invalid type or op is refused even when there is nothing to do.
  EXPECT_EQ(launchReduce(p, p, p, 0, badType, gcclSum, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(p, p, p, 0, gcclFloat32, badOp, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(nullptr, p, p, 16, gcclFloat32, gcclSum, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(p, nullptr, p, 16, gcclFloat32, gcclSum, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(p, p, nullptr, 16, gcclFloat32, gcclSum, stream_), cudaErrorInvalidValue);
  // Not aligned to the element: would fault in the kernel.
  EXPECT_EQ(launchReduce(p + 1, p, p, 16, gcclFloat32, gcclSum, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(p, p + 2, p, 16, gcclFloat64, gcclSum, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchReduce(nullptr, nullptr, nullptr, 0, gcclFloat32, gcclSum, stream_), cudaSuccess);

  EXPECT_EQ(launchDivide(p, p, 16, badType, 2, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchDivide(p, p, 16, gcclFloat32, 0, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchDivide(p, p, 16, gcclFloat32, -3, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchDivide(p, p, 0, gcclFloat32, 0, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchDivide(nullptr, p, 16, gcclInt32, 2, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchDivide(p, nullptr, 16, gcclInt32, 2, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchDivide(p, p + 1, 16, gcclFloat16, 2, stream_), cudaErrorInvalidValue);
  EXPECT_EQ(launchDivide(nullptr, nullptr, 0, gcclInt32, 2, stream_), cudaSuccess);
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
}

}  // namespace
}  // namespace gccl::cuda

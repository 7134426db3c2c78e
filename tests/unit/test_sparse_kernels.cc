// The sparse kernels behind sparse AllReduce: index checks, scatter-add and
// the rank-order merge give the same bits as adding into a dense tensor in
// the same order, for every type, and report a result too large to fit.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/cpu/half.h"
#include "kernels/cpu/sparse.h"

namespace gccl::kernels::sparse {
namespace {

TEST(SparseKernels, IndexChecksNameTheFirstBadPosition) {
  const uint32_t ok[] = {0, 3, 9};
  const uint32_t dup[] = {0, 3, 3};
  const uint32_t down[] = {4, 2};
  const uint32_t big[] = {1, 10};
  size_t bad = 99;
  EXPECT_TRUE(checkIndices(ok, 3, 10, &bad));
  EXPECT_FALSE(checkIndices(dup, 3, 10, &bad));
  EXPECT_EQ(bad, 2u);
  EXPECT_FALSE(checkIndices(down, 2, 10, &bad));
  EXPECT_EQ(bad, 1u);
  EXPECT_FALSE(checkIndices(big, 2, 10, &bad));
  EXPECT_EQ(bad, 1u);
  EXPECT_TRUE(checkIndices(nullptr, 0, 0, &bad));
}

// Three lists merged equal three scatter-adds into zeros, bit for bit, for
// float16 (added in float32, rounded each time) and int8 (wrapping).
TEST(SparseKernels, MergeEqualsScatterAddInListOrder) {
  const uint32_t i0[] = {1, 4, 6}, i1[] = {0, 4}, i2[] = {4, 6, 7};
  const uint32_t* idx[] = {i0, i1, i2};
  const size_t nnz[] = {3, 2, 3};
  {
    const uint16_t v0[] = {floatToHalf(1.5f), floatToHalf(1000.f), floatToHalf(-2.f)};
    const uint16_t v1[] = {floatToHalf(0.25f), floatToHalf(0.3f)};
    const uint16_t v2[] = {floatToHalf(0.3f), floatToHalf(2.f), floatToHalf(7.f)};
    const void* vals[] = {v0, v1, v2};
    std::vector<uint16_t> dense(8, 0);
    for (int r = 0; r < 3; ++r)
      ASSERT_TRUE(scatterAdd(dense.data(), idx[r], vals[r], nnz[r], gcclFloat16));
    uint32_t oi[8];
    uint16_t ov[8];
    size_t n = 0;
    ASSERT_TRUE(mergeSum(3, idx, vals, nnz, gcclFloat16, true, oi, ov, 8, &n));
    // 6 cancels to zero (-2 + 2) and is dropped.
    const uint32_t want[] = {0, 1, 4, 7};
    ASSERT_EQ(n, 4u);
    for (size_t k = 0; k < n; ++k) {
      EXPECT_EQ(oi[k], want[k]);
      EXPECT_EQ(ov[k], dense[oi[k]]) << "index " << oi[k];
    }
    EXPECT_EQ(halfToFloat(dense[6]), 0.0f);
    // Kept zeros when asked, and a result that does not fit is reported.
    ASSERT_TRUE(mergeSum(3, idx, vals, nnz, gcclFloat16, false, oi, ov, 8, &n));
    EXPECT_EQ(n, 5u);
    EXPECT_FALSE(mergeSum(3, idx, vals, nnz, gcclFloat16, true, oi, ov, 3, &n));
    EXPECT_EQ(n, 4u);
  }
  {
    const int8_t v0[] = {100, 100, 1}, v1[] = {5, 100}, v2[] = {-1, 1, 1};
    const void* vals[] = {v0, v1, v2};
    std::vector<int8_t> dense(8, 0);
    for (int r = 0; r < 3; ++r)
      ASSERT_TRUE(scatterAdd(dense.data(), idx[r], vals[r], nnz[r], gcclInt8));
    EXPECT_EQ(dense[4], static_cast<int8_t>(199));  // wrapped, as the dense reduce wraps
    uint32_t oi[8];
    int8_t ov[8];
    size_t n = 0;
    ASSERT_TRUE(mergeSum(3, idx, vals, nnz, gcclInt8, true, oi, ov, 8, &n));
    for (size_t k = 0; k < n; ++k)
      EXPECT_EQ(ov[k], dense[oi[k]]) << "index " << oi[k];
  }
}

TEST(SparseKernels, CompactKeepsTheNonZerosInOrder) {
  const double dense[] = {0.0, -0.0, 2.5, 0.0, -1.0, 0.0};
  uint32_t oi[6];
  double ov[6];
  size_t n = 0;
  ASSERT_TRUE(compact(dense, 6, gcclFloat64, oi, ov, 6, &n));
  ASSERT_EQ(n, 2u);
  EXPECT_EQ(oi[0], 2u);
  EXPECT_EQ(ov[0], 2.5);
  EXPECT_EQ(oi[1], 4u);
  EXPECT_EQ(ov[1], -1.0);
  EXPECT_FALSE(compact(dense, 6, gcclFloat64, oi, ov, 1, &n));
  EXPECT_EQ(n, 2u);
  EXPECT_FALSE(scatterAdd(ov, oi, ov, 0, static_cast<gcclDataType_t>(77)));
}

}  // namespace
}  // namespace gccl::kernels::sparse

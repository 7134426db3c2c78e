// SmallVector: values stay in place up to N, move to the heap past it, and
// keep their order through shrinking and growing again.
#include <gtest/gtest.h>

#include <vector>

#include "base/small_vector.h"

namespace gccl {
namespace {

template <size_t N>
std::vector<int> contents(SmallVector<int, N>& v) {
  return std::vector<int>(v.begin(), v.end());
}

TEST(SmallVector, KeepsOrderAcrossTheMoveToTheHeap) {
  SmallVector<int, 3> v;
  std::vector<int> want;
  EXPECT_TRUE(v.empty());
  for (int i = 0; i < 10; ++i) {
    v.push_back(i * 7);
    want.push_back(i * 7);
    ASSERT_EQ(v.size(), want.size());
    EXPECT_EQ(contents(v), want) << "after " << i + 1 << " values";
  }
  v[4] = -1;
  want[4] = -1;
  EXPECT_EQ(contents(v), want);
}

TEST(SmallVector, ShrinksAndGrowsAgainInPlaceAndOnTheHeap) {
  SmallVector<int, 2> small;
  small.push_back(1);
  small.push_back(2);
  small.resize(1);
  small.push_back(3);
  EXPECT_EQ(contents(small), (std::vector<int>{1, 3}));
  small.clear();
  EXPECT_TRUE(small.empty());
  small.push_back(4);
  EXPECT_EQ(contents(small), (std::vector<int>{4}));

  SmallVector<int, 2> big;
  for (int i = 0; i < 6; ++i)
    big.push_back(i);
  big.resize(2);  // on the heap, with stale values past the size
  big.push_back(9);
  EXPECT_EQ(contents(big), (std::vector<int>{0, 1, 9}));
  big.clear();
  for (int i = 10; i < 13; ++i)
    big.push_back(i);
  EXPECT_EQ(contents(big), (std::vector<int>{10, 11, 12}));
}

}  // namespace
}  // namespace gccl

// The usual way a multi-process test runs its ranks: fork them, wait for
// them all, and fail the current test with every failing rank's reason.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "common/multiproc.h"

namespace gccl::test {

inline void runAndExpect(int n, const RankFn& fn, int timeoutSec = 120) {
  std::string why;
  auto outcomes = runRanks(n, fn, timeoutSec);
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

}  // namespace gccl::test

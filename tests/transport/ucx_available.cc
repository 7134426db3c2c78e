// Exits 0 when the ucx transport can load libucp here, else prints why and
// exits 77, which ctest counts as a skip (SKIP_RETURN_CODE): the suites that
// force GCCL_TRANSPORT=ucx run behind it.
#include <cstdio>
#include <string>

#include "transports/ucx/ucx_api.h"

int main() {
  std::string why;
  if (gccl::ucx::loadUcp(&why) != nullptr) return 0;
  fprintf(stderr, "skipped: the ucx transport cannot run here: %s\n", why.c_str());
  return 77;
}

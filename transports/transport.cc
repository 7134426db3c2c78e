// The defaults of the transport interface (transport.h).
#include "transports/transport.h"

#include <unistd.h>

#include <cstdint>

#include "base/check.h"
#include "base/clock.h"

namespace gccl::transport {

const char* memoryTypeName(MemoryType type) {
  switch (type) {
    case MemoryType::kHost:
      return "host";
    case MemoryType::kCuda:
      return "CUDA device";
  }
  return "unknown";
}

gcclResult_t Connection::registerMemory(void* ptr, size_t bytes, MemoryType type,
                                        MemoryRegion* out) {
  GCCL_REQUIRE(type == MemoryType::kHost, gcclInvalidUsage,
               "the %s transport cannot register %s memory", transportName(), memoryTypeName(type));
  GCCL_REQUIRE(ptr != nullptr || bytes == 0, gcclInvalidArgument,
               "registering %zu bytes at a NULL pointer", bytes);
  GCCL_REQUIRE(reinterpret_cast<uintptr_t>(ptr) <= UINTPTR_MAX - bytes, gcclInvalidArgument,
               "registering %zu bytes at %p runs past the end of memory", bytes, ptr);
  *out = MemoryRegion();
  out->base = ptr;
  out->bytes = bytes;
  out->type = type;
  return gcclSuccess;
}

namespace {
gcclResult_t checkInside(const MemoryRegion& region, size_t offset, size_t len, const char* what) {
  GCCL_REQUIRE(offset <= region.bytes && len <= region.bytes - offset, gcclInvalidArgument,
               "%s of %zu bytes at offset %zu is outside the registered region of %zu bytes", what,
               len, offset, region.bytes);
  return gcclSuccess;
}
}  // namespace

gcclResult_t Connection::isendRegion(const MemoryRegion& region, size_t offset, size_t len,
                                     uint64_t tag, MessageMeta meta, Request* req) {
  GCCL_CHECK(checkInside(region, offset, len, "a send"));
  return isend(static_cast<const uint8_t*>(region.base) + offset, len, tag, meta, req);
}

gcclResult_t Connection::irecvRegion(const MemoryRegion& region, size_t offset, size_t capacity,
                                     uint64_t tag, MessageMeta expect, Request* req) {
  GCCL_CHECK(checkInside(region, offset, capacity, "a receive"));
  return irecv(static_cast<uint8_t*>(region.base) + offset, capacity, tag, expect, req);
}

gcclResult_t Transport::rejoin(const std::vector<int>& peers, const std::vector<std::string>& blobs,
                               uint32_t incarnation, int64_t perPeerMs, int64_t deadlineMs,
                               std::vector<std::unique_ptr<Connection>>* out) {
  (void)peers;
  (void)blobs;
  (void)incarnation;
  (void)perPeerMs;
  (void)deadlineMs;
  (void)out;
  return setError(gcclInvalidUsage, "transport %s cannot rejoin a running communicator", name());
}

void settleBeforeClose(Connection* const* conns, size_t n, int64_t deadlineMs) {
  for (;;) {
    bool settled = true;
    for (size_t i = 0; i < n; ++i)
      if (conns[i] != nullptr) settled = conns[i]->settleBeforeClose() && settled;
    if (settled || nowMs() >= deadlineMs) return;
    usleep(200);  // acknowledgements take a round trip; nothing to poll for
  }
}

}  // namespace gccl::transport

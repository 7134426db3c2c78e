#include "transports/shm/shm_setup.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>

#include "base/check.h"

namespace gccl::shm {

namespace {

constexpr char kBlobMagic[8] = {'G', 'C', 'C', 'L', 'S', 'H', 'M', '1'};
constexpr uint64_t kRegionMagic = 0x314e4f4947455253ull;  // "SREGION1"
constexpr uint32_t kRegionVersion = 2;
constexpr size_t kPage = 4096;

void toHex(const uint8_t* p, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i)
    snprintf(out + 2 * i, 3, "%02x", p[i]);
}

}  // namespace

int64_t monotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// ---- identity and address ----------------------------------------------------------

gcclResult_t readHostIdentity(HostIdentity* out) {
  *out = HostIdentity();
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return setError(gcclSystemError, "cannot read the boot id: %s", strerror(errno));
  ssize_t n = read(fd, out->bootId, 36);
  close(fd);
  GCCL_REQUIRE(n == 36, gcclSystemError, "the boot id is not 36 characters");
  struct stat st {};
  if (stat("/proc/self/ns/net", &st) != 0)
    return setError(gcclSystemError, "cannot stat /proc/self/ns/net: %s", strerror(errno));
  out->netDev = st.st_dev;
  out->netIno = st.st_ino;
  if (stat("/proc/self/ns/ipc", &st) != 0)
    return setError(gcclSystemError, "cannot stat /proc/self/ns/ipc: %s", strerror(errno));
  out->ipcDev = st.st_dev;
  out->ipcIno = st.st_ino;
  out->uid = geteuid();
  return gcclSuccess;
}

namespace {
struct BlobLayout {
  char magic[8];
  HostIdentity host;
  uint64_t commHash;
  int32_t rank;
  int32_t pid;
  uint8_t nonce[16];
};
}  // namespace

std::string encodeAddress(const Address& a) {
  BlobLayout b;
  memset(static_cast<void*>(&b), 0, sizeof(b));  // no stray bytes in the blob
  memcpy(b.magic, kBlobMagic, sizeof(kBlobMagic));
  b.host = a.host;
  b.commHash = a.commHash;
  b.rank = a.rank;
  b.pid = a.pid;
  memcpy(b.nonce, a.nonce, sizeof(b.nonce));
  return std::string(reinterpret_cast<const char*>(&b), sizeof(b));
}

bool decodeAddress(const std::string& blob, Address* out) {
  BlobLayout b;
  if (blob.size() != sizeof(b)) return false;
  memcpy(&b, blob.data(), sizeof(b));
  if (memcmp(b.magic, kBlobMagic, sizeof(kBlobMagic)) != 0) return false;
  b.host.bootId[sizeof(b.host.bootId) - 1] = '\0';
  out->host = b.host;
  out->commHash = b.commHash;
  out->rank = b.rank;
  out->pid = b.pid;
  memcpy(out->nonce, b.nonce, sizeof(b.nonce));
  return true;
}

bool sameHost(const Address& a, const Address& b) {
  return strncmp(a.host.bootId, b.host.bootId, sizeof(a.host.bootId)) == 0 &&
         a.host.bootId[0] != '\0' && a.host.netDev == b.host.netDev &&
         a.host.netIno == b.host.netIno && a.host.uid == b.host.uid;
}

std::string socketName(const Address& a) {
  char nonce[33];
  toHex(a.nonce, sizeof(a.nonce), nonce);
  char name[96];
  snprintf(name, sizeof(name), "gccl-shm-%016" PRIx64 "-%d-%s", a.commHash, a.rank, nonce);
  return name;
}

socklen_t abstractAddress(const std::string& name, sockaddr_un* sa) {
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  size_t n = name.size() < sizeof(sa->sun_path) - 1 ? name.size() : sizeof(sa->sun_path) - 1;
  memcpy(sa->sun_path + 1, name.data(), n);  // sun_path[0] = 0: the abstract namespace
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

gcclResult_t listenAbstract(const std::string& name, int* fd) {
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return setError(gcclSystemError, "unix socket: %s", strerror(errno));
  sockaddr_un sa;
  socklen_t len = abstractAddress(name, &sa);
  if (bind(s, reinterpret_cast<sockaddr*>(&sa), len) != 0 || listen(s, 128) != 0) {
    int e = errno;
    close(s);
    return setError(gcclSystemError, "listening on the abstract unix socket @%s: %s", name.c_str(),
                    strerror(e));
  }
  *fd = s;
  return gcclSuccess;
}

RegionLayout makeLayout(uint64_t dataLaneBytes, uint64_t asyncLaneBytes) {
  RegionLayout l;
  l.laneBytes[kDataLane] = dataLaneBytes;
  l.laneBytes[kAsyncLane] = asyncLaneBytes;
  uint64_t off = (sizeof(SharedHeader) + kPage - 1) / kPage * kPage;
  for (int i = 0; i < 2 * kLanes; ++i) {
    l.ringOffset[i] = off;
    off += (l.laneBytes[i % kLanes] + kPage - 1) / kPage * kPage;
  }
  l.totalBytes = off;
  return l;
}

void releaseEndpoint(Endpoint* e) {
  // A unix socket closed with unread data resets the peer's end, and the
  // peer may then lose what this side sent last (an abort notice and its
  // reason): read what is left first.
  if (e->sock >= 0) {
    char sink[2048];
    while (recv(e->sock, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
  }
  for (int* fd : {&e->sock, &e->myBell, &e->peerBell})
    if (*fd >= 0) {
      close(*fd);
      *fd = -1;
    }
  if (e->base != nullptr) munmap(e->base, e->bytes);
  e->base = nullptr;
}

bool probeSingleCopy(pid_t pid, uint64_t remote, const uint8_t* expect, size_t len) {
  if (pid <= 0 || len > 64) return false;
  uint8_t got[64];
  iovec local{got, len};
  iovec far{reinterpret_cast<void*>(static_cast<uintptr_t>(remote)), len};
  ssize_t n = process_vm_readv(pid, &local, 1, &far, 1, 0);
  return n == static_cast<ssize_t>(len) && memcmp(got, expect, len) == 0;
}

gcclResult_t createRegion(const RegionLayout& layout, int* memfd, void** base) {
  int fd = memfd_create("gccl-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return setError(gcclSystemError, "memfd_create: %s", strerror(errno));
  if (ftruncate(fd, static_cast<off_t>(layout.totalBytes)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int e = errno;
    close(fd);
    return setError(gcclSystemError, "sizing the shared-memory region (%" PRIu64 " bytes): %s",
                    layout.totalBytes, strerror(e));
  }
  void* p =
      mmap(nullptr, layout.totalBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    return setError(gcclSystemError, "mapping the shared-memory region: %s", strerror(e));
  }
  auto* h = new (p) SharedHeader();
  h->magic = kRegionMagic;
  h->version = kRegionVersion;
  for (int l = 0; l < kLanes; ++l)
    h->laneBytes[l] = layout.laneBytes[l];
  h->totalBytes = layout.totalBytes;
  *memfd = fd;
  *base = p;
  return gcclSuccess;
}

gcclResult_t attachRegion(int fd, const uint64_t laneBytes[kLanes], uint64_t regionBytes, int peer,
                          void** base) {
  for (int l = 0; l < kLanes; ++l)
    GCCL_REQUIRE(
        validRingCapacity(laneBytes[l]) && laneBytes[l] >= kPage && laneBytes[l] <= (1ull << 30),
        gcclRemoteError, "rank %d offered a shared ring of %" PRIu64 " bytes", peer, laneBytes[l]);
  RegionLayout layout = makeLayout(laneBytes[kDataLane], laneBytes[kAsyncLane]);
  struct stat st {};
  int seals = fcntl(fd, F_GET_SEALS);
  GCCL_REQUIRE(fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == layout.totalBytes &&
                   regionBytes == layout.totalBytes && seals >= 0 &&
                   (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) == (F_SEAL_SHRINK | F_SEAL_SEAL),
               gcclRemoteError,
               "rank %d's shared-memory region is not the sealed %" PRIu64 " bytes it announced",
               peer, layout.totalBytes);
  void* p =
      mmap(nullptr, layout.totalBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED)
    return setError(gcclSystemError, "mapping rank %d's shared-memory region: %s", peer,
                    strerror(errno));
  auto* h = static_cast<SharedHeader*>(p);
  if (h->magic != kRegionMagic || h->version != kRegionVersion ||
      h->totalBytes != layout.totalBytes || h->laneBytes[0] != layout.laneBytes[0] ||
      h->laneBytes[1] != layout.laneBytes[1]) {
    munmap(p, layout.totalBytes);
    return setError(gcclRemoteError, "rank %d's shared-memory region has a foreign header", peer);
  }
  *base = p;
  return gcclSuccess;
}

}  // namespace gccl::shm

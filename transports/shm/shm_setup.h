// Setting up a shared-memory connection between two ranks of one host,
// without creating any file.
//
// Same host: the address blob carries the kernel's boot id, the network and
// IPC namespaces (device and inode of /proc/self/ns/{net,ipc}), the
// effective uid and the listening socket's random name. Two ranks may use
// shared memory only when boot id, network namespace and uid agree: a
// container on another machine has another boot id, one in another network
// namespace cannot reach our abstract socket, and another user is not let in.
//
// Rendezvous: each rank listens on an abstract unix socket (Linux's abstract
// namespace: no file, gone with the last descriptor), named from the
// communicator, the rank and a random nonce. The higher rank connects to the
// lower one. SOCK_SEQPACKET keeps message boundaries, so every handshake
// message and later every control frame is one recv().
//
//   acceptor  -> connector  CHALLENGE  nonceA[16]
//   connector -> acceptor   HELLO      commHash, fromRank, toRank, nonceC[16],
//                                      cookie address + value, mac
//   acceptor  -> connector  PROOF      "I can read your memory", cookie address + value,
//                                      region size, mac; with SCM_RIGHTS: the
//                                      memfd and the two doorbell eventfds
//   connector -> acceptor   READY      "I can read your memory"
//
// HELLO's mac = HMAC-SHA256(secret, "gccl-shm-hello" | nonceA | HELLO before mac);
// PROOF's mac = HMAC-SHA256(secret, "gccl-shm-proof" | nonceA | HELLO | PROOF before mac).
// Both sides also check the peer's uid with SO_PEERCRED, whose pid (right in
// this pid namespace) is the one single-copy reads (process_vm_readv) use.
// Each side proves that such reads work by reading the cookie the other put
// in its own memory; a refusal (EPERM between users, ptrace restrictions,
// ENOSYS) makes that direction copy through the rings instead.
//
// The shared region is a memfd (MFD_CLOEXEC, sealed against shrinking and
// growing) that the acceptor creates only after the connector proved the
// secret; both sides map it and close the descriptor, so the memory goes
// away with the last mapping, whatever way the processes end.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "gccl/gccl.h"
#include "transports/shm/shm_ring.h"

namespace gccl::shm {

// Milliseconds on the monotonic clock (the engine's clock).
int64_t monotonicMs();

struct HostIdentity {
  char bootId[40] = {};  // /proc/sys/kernel/random/boot_id, 36 characters
  uint64_t netDev = 0, netIno = 0;
  uint64_t ipcDev = 0, ipcIno = 0;
  uint32_t uid = 0;  // effective uid (what SO_PEERCRED reports)
};
gcclResult_t readHostIdentity(HostIdentity* out);

// What a rank publishes (the address blob).
struct Address {
  HostIdentity host;
  uint64_t commHash = 0;
  int32_t rank = -1;
  int32_t pid = 0;  // informational; connections use SO_PEERCRED's
  uint8_t nonce[16] = {};
};
std::string encodeAddress(const Address& a);
bool decodeAddress(const std::string& blob, Address* out);
// Boot id, network namespace and uid agree.
bool sameHost(const Address& a, const Address& b);
// The abstract socket name (without its leading NUL byte).
std::string socketName(const Address& a);

// Non-blocking listening socket on an abstract name.
gcclResult_t listenAbstract(const std::string& name, int* fd);
// The socket address of an abstract name; returns its length.
socklen_t abstractAddress(const std::string& name, sockaddr_un* sa);

// ---- the shared region ----------------------------------------------------------

// The two message lanes in each direction: ordinary traffic, and asynchronous
// traffic (transport::isAsyncTag), which must never wait behind an ordinary
// message nobody has posted a receive for yet.
inline constexpr int kLanes = 2;
inline constexpr int kDataLane = 0;
inline constexpr int kAsyncLane = 1;

struct SleepFlag {
  alignas(kCacheLine) std::atomic<uint32_t> value;
};

// At offset 0 of the region. Side 0 is the acceptor (the lower rank), side 1
// the connector; rings[side * kLanes + lane] carries what `side` sends.
struct SharedHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t reserved;
  uint64_t laneBytes[kLanes];
  uint64_t totalBytes;
  SleepFlag sleeping[2];  // side s is about to sleep: wake it through its doorbell
  RingControl rings[2 * kLanes];
};

struct RegionLayout {
  uint64_t laneBytes[kLanes] = {};
  uint64_t ringOffset[2 * kLanes] = {};
  uint64_t totalBytes = 0;
};
// Lane sizes must be validRingCapacity.
RegionLayout makeLayout(uint64_t dataLaneBytes, uint64_t asyncLaneBytes);

// The acceptor's side: a sealed memfd of layout.totalBytes, mapped, with
// the header filled in.
gcclResult_t createRegion(const RegionLayout& layout, int* memfd, void** base);
// The connector's side: maps the peer's memfd after checking that it is the
// region announced (lane sizes, total size) and that it cannot shrink under
// this process (which would be a SIGBUS), and that its header agrees.
gcclResult_t attachRegion(int fd, const uint64_t laneBytes[kLanes], uint64_t regionBytes, int peer,
                          void** base);

// What a finished handshake hands to the connection (it owns the fds and the mapping).
struct Endpoint {
  int peer = -1;
  int side = 0;
  int sock = -1;      // the control channel
  int myBell = -1;    // written by the peer to wake this side
  int peerBell = -1;  // written by this side to wake the peer
  void* base = nullptr;
  size_t bytes = 0;
  uint64_t laneBytes[kLanes] = {};  // as validated at set-up (the header is the peer's to write)
  pid_t peerPid = 0;
  bool peerReadsMe = false;  // the peer can read this process's memory (single copy)
  bool iReadPeer = false;
};
void releaseEndpoint(Endpoint* e);

// What both handshake roles need.
struct HandshakeConfig {
  int rank = 0;
  uint64_t commHash = 0;
  const uint8_t* secret = nullptr;  // 32 bytes
  bool cma = true;                  // offer single-copy reads at all
  uint64_t dataLaneBytes = 0, asyncLaneBytes = 0;
};

// Connector: connects to rank `peer` (listening on `name`) and runs the
// handshake, blocking until done or `deadlineMs` (monotonic).
gcclResult_t connectToPeer(const HandshakeConfig& cfg, int peer, const std::string& name,
                           int64_t deadlineMs, Endpoint* out);

// Acceptor, non-blocking: one accepted socket's handshake.
class AcceptedPeer {
 public:
  AcceptedPeer(const HandshakeConfig* cfg, int fd) : cfg_(cfg), fd_(fd) {}
  ~AcceptedPeer();
  AcceptedPeer(const AcceptedPeer&) = delete;
  AcceptedPeer& operator=(const AcceptedPeer&) = delete;
  // Checks the peer's uid and sends the challenge.
  gcclResult_t start();
  int fd() const { return fd_; }
  // After the socket became readable. `expected(rank)` says whether a rank
  // may connect now. *done once READY arrived; an error rejects the peer.
  gcclResult_t onReadable(const std::function<bool(int)>& expected, bool* done);
  // Hands over everything (after done).
  Endpoint take();

 private:
  gcclResult_t onHello(const uint8_t* raw, const std::function<bool(int)>& expected);

  const HandshakeConfig* cfg_;
  int fd_;
  pid_t pid_ = 0;
  int stage_ = 0;  // 0: before start, 1: awaiting HELLO, 2: awaiting READY
  uint8_t nonceA_[16] = {};
  uint8_t cookie_[16] = {};  // the connector reads this through process_vm_readv
  Endpoint ep_;
};

// Reads `len` bytes at `remote` in process `pid` and compares them with `expect`.
bool probeSingleCopy(pid_t pid, uint64_t remote, const uint8_t* expect, size_t len);

}  // namespace gccl::shm

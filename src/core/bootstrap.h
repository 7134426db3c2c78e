// Rendezvous: how ranks that know only a unique id find each other.
//
// The unique id (128 bytes, little-endian):
//    0  4 magic "GCID"        4  2 version         6  2 flags (bit 0: root served by rank 0)
//    8 16 nonce (names the communicator; commHash = first 8 bytes of SHA-256(nonce))
//   24 32 secret (every connection proves it knows it; see transports/tcp/handshake.h)
//   56 24 root address: family u16, port u16, address 16 bytes, scope u32
//
// The root (a thread in the process that created the id, or in rank 0 for
// ids made from GCCL_COMM_ID) collects each rank's address blob and sends
// everyone the full table, after checking that all ranks agree on the size
// and that no rank joined twice. Then the ranks connect to each other directly.
//
// Rejoining (fault-tolerant communicators): when a rank joins asking for it,
// the root goes on serving on the same socket, behind the same
// authentication: a restarted rank sends its new blob (bootstrapRejoin) and
// gets the current table and its incarnation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/net_if.h"
#include "gccl/gccl.h"
#include "transports/tcp/handshake.h"

namespace gccl {

struct UniqueIdFields {
  uint8_t nonce[16] = {};
  uint8_t secret[32] = {};
  SockAddr root;
  bool rootAtRank0 = false;
};

void encodeUniqueId(const UniqueIdFields& fields, gcclUniqueId* id);
gcclResult_t decodeUniqueId(const gcclUniqueId& id, UniqueIdFields* fields);
tcp::Credentials credentialsOf(const UniqueIdFields& fields);

// Makes a fresh id whose root is served by this process (started now), or,
// with GCCL_COMM_ID set, the id of that address (uniqueIdFromAddress).
gcclResult_t createUniqueId(int64_t timeoutMs, gcclUniqueId* id);
// Always the first kind: a fresh root served by this process on an
// interface `ifnames` selects (GCCL_SOCKET_IFNAME syntax), whatever
// GCCL_COMM_ID says (gcclCommShrink's new communicator).
gcclResult_t createServedUniqueId(const std::string& ifnames, int64_t timeoutMs, gcclUniqueId* id);
// Makes the id of a rendezvous at `hostPort`, served by rank 0. The secret
// comes from GCCL_SECRET (a warning is logged when it is unset: such jobs
// are not authenticated beyond knowing the address); `jobKey` salts the nonce
// so that different jobs on one address get different communicators.
gcclResult_t uniqueIdFromAddress(const std::string& hostPort, const std::string& jobKey,
                                 gcclUniqueId* id);
// Rank 0 of a rootAtRank0 id: binds the root address and serves it.
gcclResult_t startRootAt(const UniqueIdFields& fields, int64_t timeoutMs);

// A rank whose init failed waits (up to maxMs) for rendezvous roots running in
// its process to answer the other ranks, so they learn why instead of seeing
// the connection drop when this process exits.
void waitForLocalRoots(int64_t maxMs);

// The most a rank's address blob may hold.
inline constexpr size_t kMaxBlobBytes = 16 << 10;
// Sends this rank's address blob (how its transports are reached) to the
// root and returns every rank's, in rank order. With keepServing (a
// fault-tolerant communicator), the root goes on serving after the
// rendezvous, so that a restarted rank can rejoin (bootstrapRejoin), until
// stopRejoinService in the root's process or the end of that process.
gcclResult_t bootstrapExchange(const UniqueIdFields& fields, int rank, int nranks,
                               const std::string& myBlob, int64_t deadlineMs,
                               std::vector<std::string>* all, bool keepServing = false);
// A restarted rank of a running fault-tolerant communicator: sends its new
// address blob to the root (which must have been asked to keep serving) and
// receives every rank's blob (its own entry replaced) and its incarnation:
// 1 the first time `rank` rejoins, 2 the next, ...
gcclResult_t bootstrapRejoin(const UniqueIdFields& fields, int rank, int nranks,
                             const std::string& myBlob, int64_t deadlineMs,
                             std::vector<std::string>* all, uint32_t* incarnation);
// Stops the root kept serving in this process for the communicator `fields`
// names, if any (called when that communicator is destroyed here). Returns
// once its listening socket is closed (waiting a moment at most).
void stopRejoinService(const UniqueIdFields& fields);

}  // namespace gccl

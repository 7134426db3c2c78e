// The registry of transports: which kinds this build has, which of them the
// user allows (GCCL_TRANSPORT: "auto" or a preference list like "shm,tcp"),
// and, for each peer, the first of them that both ranks can use.
//
// Every rank publishes one address blob (through the bootstrap): its host's
// identity, its preference list, and each of its transports' own blobs. From
// the table of all blobs every rank makes the same choice for a pair, since
// a transport's canReach is symmetric and both ranks walk the same list
// (ranks whose lists differ are told so by name).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transports/tcp/tcp_transport.h"
#include "transports/transport.h"

namespace gccl::transport {

struct RegistryOptions {
  TransportContext ctx;
  std::string preference = "auto";
  tcp::TcpOptions tcp;
};

// The transports this build has (ucx where UCX's headers were found).
const std::vector<std::string>& knownTransports();
// What "auto" means, in order of preference: shm, tcp (ucx only when named).
const std::vector<std::string>& automaticTransports();
// "auto" or a comma-separated list of known names, without repeats; the
// names in *out. The error names what is wrong and what is known.
gcclResult_t parseTransportPreference(const std::string& text, std::vector<std::string>* out);

class Registry {
 public:
  explicit Registry(const RegistryOptions& options);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Makes the allowed transports that can run here, lets each listen, and
  // returns this rank's blob for the bootstrap.
  gcclResult_t open(std::string* blob);
  // With every rank's blob (rank order): chooses a transport per peer and
  // connects. (*conns)[r] is set for every r but this rank; listeners get
  // what keeps refusing latecomers.
  gcclResult_t connect(const std::vector<std::string>& blobs, int64_t deadlineMs,
                       std::vector<std::unique_ptr<Connection>>* conns,
                       std::vector<std::unique_ptr<Listener>>* listeners);

  // A restarted rank, after open(): connects to every other rank of `blobs`
  // over TCP (the transport that rejoins) with Transport::rejoin; unreachable
  // ranks stay null in *conns; listeners as connect gives them. Error when
  // this rank or a peer has no TCP blob (TCP not in the preference list).
  gcclResult_t rejoin(const std::vector<std::string>& blobs, uint32_t incarnation,
                      int64_t perPeerMs, int64_t deadlineMs,
                      std::vector<std::unique_ptr<Connection>>* conns,
                      std::vector<std::unique_ptr<Listener>>* listeners);

  // After connect: the transport chosen for each rank ("self" for this one).
  // After rejoin: "tcp" for each rank reached, "" for one that was not.
  const std::vector<std::string>& chosen() const { return chosen_; }
  // Ranks on this machine (the same kernel boot), this one included.
  int localRanks() const { return localRanks_; }
  // The transport of that name, if this rank made it.
  Transport* find(const std::string& name) const;
  // The first transport that listens on a socket address (socketAddress),
  // false when none does.
  bool socketAddress(SockAddr* addr, std::string* ifname) const;
  // "tcp: ranks 2,3 (...); shm: rank 1 (...)".
  std::string describe() const;

 private:
  struct Decoded;
  // Decodes every rank's blob, checks that all allow the same transports,
  // and resets chosen_ ("self" for this rank) and localRanks_.
  gcclResult_t readTable(const std::vector<std::string>& blobs, std::vector<Decoded>* all);
  RegistryOptions opt_;
  std::vector<std::string> order_;  // the resolved preference
  std::vector<std::unique_ptr<Transport>> transports_;
  std::string hostId_;
  std::vector<std::string> chosen_;
  int localRanks_ = 1;
};

}  // namespace gccl::transport

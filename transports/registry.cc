#include "transports/registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "base/check.h"
#include "base/le.h"
#include "base/log.h"
#include "transports/shm/shm_transport.h"
#ifdef GCCL_HAVE_UCX
#include "transports/ucx/ucx_transport.h"
#endif

namespace gccl::transport {

namespace {

constexpr uint32_t kBlobMagic = 0x42544347u;  // "GCTB"
constexpr uint8_t kBlobVersion = 1;
constexpr size_t kHostIdBytes = 16;

// The identity of the running kernel: the same for every process of one boot
// of one machine (containers included), different across machines.
std::string hostIdentity() {
  std::string id(kHostIdBytes, '\0');
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char text[64] = {};
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    size_t k = 0;
    for (ssize_t i = 0; i < n && k < 2 * kHostIdBytes; ++i) {
      char c = text[i];
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (v < 0) continue;
      id[k / 2] = static_cast<char>(id[k / 2] | (v << (k % 2 == 0 ? 4 : 0)));
      ++k;
    }
    if (k == 2 * kHostIdBytes) return id;
  }
  // No boot id: this rank counts as a machine of its own.
  std::random_device rd;
  for (char& c : id)
    c = static_cast<char>(rd());
  return id;
}

void putBytes(std::string* out, const std::string& bytes, size_t lenBytes) {
  uint8_t len[4];
  putLe32(len, static_cast<uint32_t>(bytes.size()));
  out->append(reinterpret_cast<const char*>(len), lenBytes);
  out->append(bytes);
}

bool getBytes(const std::string& in, size_t* at, size_t lenBytes, std::string* out) {
  if (in.size() - *at < lenBytes) return false;
  uint8_t len[4] = {};
  memcpy(len, in.data() + *at, lenBytes);
  size_t n = getLe32(len);
  *at += lenBytes;
  if (in.size() - *at < n) return false;
  out->assign(in, *at, n);
  *at += n;
  return true;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names)
    s += (s.empty() ? "" : ",") + n;
  return s;
}

}  // namespace

// One rank's blob, decoded.
struct Registry::Decoded {
  std::string hostId;
  std::string preference;
  std::vector<std::pair<std::string, std::string>> parts;  // name, that transport's blob
  const std::string* part(const std::string& name) const {
    for (const auto& p : parts)
      if (p.first == name) return &p.second;
    return nullptr;
  }
  static bool decode(const std::string& in, Decoded* out) {
    size_t at = 0;
    if (in.size() < 5 || getLe32(reinterpret_cast<const uint8_t*>(in.data())) != kBlobMagic ||
        static_cast<uint8_t>(in[4]) != kBlobVersion)
      return false;
    at = 5;
    if (!getBytes(in, &at, 1, &out->hostId) || !getBytes(in, &at, 2, &out->preference) ||
        at >= in.size())
      return false;
    size_t count = static_cast<uint8_t>(in[at++]);
    for (size_t i = 0; i < count; ++i) {
      std::pair<std::string, std::string> p;
      if (!getBytes(in, &at, 1, &p.first) || !getBytes(in, &at, 2, &p.second)) return false;
      out->parts.push_back(std::move(p));
    }
    return at == in.size();
  }
};

const std::vector<std::string>& knownTransports() {
#ifdef GCCL_HAVE_UCX
  static const std::vector<std::string> kKnown = {"shm", "tcp", "ucx"};
#else
  static const std::vector<std::string> kKnown = {"shm", "tcp"};
#endif
  return kKnown;
}

const std::vector<std::string>& automaticTransports() {
  // Not ucx: on hosts without RDMA, gccl's own transports are at least as
  // fast, and UCX's start-up is not paid by jobs that do not ask for it.
  static const std::vector<std::string> kAuto = {"shm", "tcp"};
  return kAuto;
}

gcclResult_t parseTransportPreference(const std::string& text, std::vector<std::string>* out) {
  out->clear();
  std::string trimmed;
  for (char c : text)
    if (c != ' ' && c != '\t') trimmed += c;
  if (trimmed.empty() || trimmed == "auto") {
    *out = automaticTransports();
    return gcclSuccess;
  }
  size_t start = 0;
  while (start <= trimmed.size()) {
    size_t comma = trimmed.find(',', start);
    std::string name =
        trimmed.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? trimmed.size() + 1 : comma + 1;
    if (name.empty()) continue;
    const auto& known = knownTransports();
    GCCL_REQUIRE(std::find(known.begin(), known.end(), name) != known.end(), gcclInvalidArgument,
                 "transport \"%s\" (in \"%s\") is not one this build has (%s, or auto)",
                 name.c_str(), text.c_str(), joined(known).c_str());
    GCCL_REQUIRE(std::find(out->begin(), out->end(), name) == out->end(), gcclInvalidArgument,
                 "transport \"%s\" appears twice in \"%s\"", name.c_str(), text.c_str());
    out->push_back(name);
  }
  GCCL_REQUIRE(!out->empty(), gcclInvalidArgument, "the transport list \"%s\" names no transport",
               text.c_str());
  return gcclSuccess;
}

Registry::Registry(const RegistryOptions& options) : opt_(options) {}
Registry::~Registry() = default;

Transport* Registry::find(const std::string& name) const {
  for (const auto& t : transports_)
    if (name == t->name()) return t.get();
  return nullptr;
}

gcclResult_t Registry::open(std::string* blob) {
  GCCL_CHECK(parseTransportPreference(opt_.preference, &order_));
  bool automatic = opt_.preference.empty() || opt_.preference == "auto";
  for (const std::string& name : order_) {
    std::unique_ptr<Transport> t;
    if (name == "tcp") t = std::make_unique<tcp::TcpTransport>(opt_.ctx, opt_.tcp);
    if (name == "shm") t = shm::makeShmTransport(opt_.ctx);
#ifdef GCCL_HAVE_UCX
    if (name == "ucx") t = std::make_unique<ucx::UcxTransport>(opt_.ctx);
#endif
    std::string why;
    if (t == nullptr || !t->viable(&why)) {
      GCCL_REQUIRE(automatic, gcclInvalidUsage,
                   "transport %s was asked for (GCCL_TRANSPORT=%s) but cannot run here: %s",
                   name.c_str(), opt_.preference.c_str(), why.c_str());
      GCCL_INFO(kLogInit, "transport %s cannot run here: %s", name.c_str(), why.c_str());
      continue;
    }
    transports_.push_back(std::move(t));
  }
  GCCL_REQUIRE(!transports_.empty(), gcclInvalidUsage,
               "no transport of \"%s\" can run on this machine", opt_.preference.c_str());
  hostId_ = hostIdentity();
  std::string out;
  uint8_t head[4];
  putLe32(head, kBlobMagic);
  out.append(reinterpret_cast<const char*>(head), 4);
  out.push_back(static_cast<char>(kBlobVersion));
  putBytes(&out, hostId_, 1);
  putBytes(&out, joined(order_), 2);
  out.push_back(static_cast<char>(transports_.size()));
  for (auto& t : transports_) {
    std::string part;
    GCCL_CHECK(t->listen(&part));
    GCCL_REQUIRE(part.size() <= kMaxAddressBlobBytes, gcclInternalError,
                 "transport %s published %zu bytes, more than %zu", t->name(), part.size(),
                 kMaxAddressBlobBytes);
    putBytes(&out, std::string(t->name()), 1);
    putBytes(&out, part, 2);
  }
  *blob = std::move(out);
  return gcclSuccess;
}

gcclResult_t Registry::readTable(const std::vector<std::string>& blobs, std::vector<Decoded>* all) {
  int n = opt_.ctx.nranks, me = opt_.ctx.rank;
  GCCL_REQUIRE(blobs.size() == static_cast<size_t>(n), gcclInternalError,
               "%zu address blobs for %d ranks", blobs.size(), n);
  all->assign(static_cast<size_t>(n), Decoded());
  for (int r = 0; r < n; ++r)
    GCCL_REQUIRE(Decoded::decode(blobs[static_cast<size_t>(r)], &(*all)[static_cast<size_t>(r)]),
                 gcclInternalError, "rank %d published an address blob that does not decode", r);
  const Decoded& mine = (*all)[static_cast<size_t>(me)];
  chosen_.assign(static_cast<size_t>(n), "");
  chosen_[static_cast<size_t>(me)] = "self";
  localRanks_ = 0;
  for (int r = 0; r < n; ++r) {
    const Decoded& theirs = (*all)[static_cast<size_t>(r)];
    localRanks_ += theirs.hostId == mine.hostId;
    GCCL_REQUIRE(theirs.preference == mine.preference, gcclInvalidUsage,
                 "rank %d allows the transports \"%s\" while this rank allows \"%s\" "
                 "(GCCL_TRANSPORT must be the same on every rank)",
                 r, theirs.preference.c_str(), mine.preference.c_str());
  }
  return gcclSuccess;
}

gcclResult_t Registry::connect(const std::vector<std::string>& blobs, int64_t deadlineMs,
                               std::vector<std::unique_ptr<Connection>>* conns,
                               std::vector<std::unique_ptr<Listener>>* listeners) {
  int n = opt_.ctx.nranks, me = opt_.ctx.rank;
  std::vector<Decoded> all;
  GCCL_CHECK(readTable(blobs, &all));
  const Decoded& mine = all[static_cast<size_t>(me)];
  std::vector<std::vector<int>> peersOf(transports_.size());
  for (int r = 0; r < n; ++r) {
    const Decoded& theirs = all[static_cast<size_t>(r)];
    if (r == me) continue;
    std::string why;
    for (size_t i = 0; i < transports_.size() && chosen_[static_cast<size_t>(r)].empty(); ++i) {
      Transport& t = *transports_[i];
      const std::string* a = mine.part(t.name());
      const std::string* b = theirs.part(t.name());
      if (b == nullptr) {
        why += std::string(why.empty() ? "" : "; ") + t.name() + ": rank " + std::to_string(r) +
               " cannot run it";
      } else if (!t.canReach(*a, *b)) {
        why += std::string(why.empty() ? "" : "; ") + t.name() + ": not between these ranks" +
               (theirs.hostId != mine.hostId ? " (another machine)" : "");
      } else {
        chosen_[static_cast<size_t>(r)] = t.name();
        peersOf[i].push_back(r);
      }
    }
    GCCL_REQUIRE(!chosen_[static_cast<size_t>(r)].empty(), gcclInvalidUsage,
                 "no allowed transport reaches rank %d (GCCL_TRANSPORT=%s): %s", r,
                 opt_.preference.c_str(), why.c_str());
  }
  conns->resize(static_cast<size_t>(n));
  // Every rank sets its transports up in the same order, so no two ranks
  // wait on each other in different transports.
  for (size_t i = 0; i < transports_.size(); ++i) {
    Transport& t = *transports_[i];
    std::vector<std::string> parts(static_cast<size_t>(n));
    for (int r : peersOf[i])
      parts[static_cast<size_t>(r)] = *all[static_cast<size_t>(r)].part(t.name());
    gcclResult_t res = t.connect(peersOf[i], parts, deadlineMs, conns);
    if (res != gcclSuccess) return setError(res, "%s: %s", t.name(), threadLastError());
    std::unique_ptr<Listener> l = t.takeListener();
    if (l) listeners->push_back(std::move(l));
  }
  return gcclSuccess;
}

gcclResult_t Registry::rejoin(const std::vector<std::string>& blobs, uint32_t incarnation,
                              int64_t perPeerMs, int64_t deadlineMs,
                              std::vector<std::unique_ptr<Connection>>* conns,
                              std::vector<std::unique_ptr<Listener>>* listeners) {
  int n = opt_.ctx.nranks, me = opt_.ctx.rank;
  std::vector<Decoded> all;
  GCCL_CHECK(readTable(blobs, &all));
  // Only TCP rejoins: its listeners are the ones that admit restarted ranks.
  Transport* tcp = find("tcp");
  const Decoded& mine = all[static_cast<size_t>(me)];
  GCCL_REQUIRE(tcp != nullptr && mine.part("tcp") != nullptr, gcclInvalidUsage,
               "rank %d cannot rejoin: it has no tcp transport (GCCL_TRANSPORT=%s), and a "
               "restarted rank rejoins over tcp",
               me, opt_.preference.c_str());
  std::vector<int> peers;
  std::vector<std::string> parts(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const Decoded& theirs = all[static_cast<size_t>(r)];
    if (r == me) continue;
    const std::string* part = theirs.part("tcp");
    GCCL_REQUIRE(part != nullptr, gcclInvalidUsage,
                 "rank %d cannot rejoin: rank %d has no tcp address (GCCL_TRANSPORT=%s), and a "
                 "restarted rank rejoins over tcp",
                 me, r, opt_.preference.c_str());
    parts[static_cast<size_t>(r)] = *part;
    peers.push_back(r);
  }
  conns->resize(static_cast<size_t>(n));
  gcclResult_t res = tcp->rejoin(peers, parts, incarnation, perPeerMs, deadlineMs, conns);
  if (res != gcclSuccess) return setError(res, "tcp: %s", threadLastError());
  for (int r : peers)
    if ((*conns)[static_cast<size_t>(r)] != nullptr) chosen_[static_cast<size_t>(r)] = "tcp";
  for (auto& t : transports_) {
    std::unique_ptr<Listener> l = t->takeListener();
    if (l) listeners->push_back(std::move(l));
  }
  return gcclSuccess;
}

bool Registry::socketAddress(SockAddr* addr, std::string* ifname) const {
  for (const auto& t : transports_)
    if (t->socketAddress(addr, ifname)) return true;
  return false;
}

std::string Registry::describe() const {
  std::string out;
  for (const auto& t : transports_) {
    std::string ranks;
    for (size_t r = 0; r < chosen_.size(); ++r)
      if (chosen_[r] == t->name()) ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
    if (ranks.empty()) continue;
    out += (out.empty() ? "" : "; ") + t->describe() + " to rank(s) " + ranks;
  }
  return out;
}

}  // namespace gccl::transport

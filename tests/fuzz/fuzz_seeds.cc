// Writes the seed inputs of the fuzz targets: for each, a few inputs that do
// what the real protocol does (a valid frame header, a whole handshake, framed
// messages matched to posted receives), from which the fuzzer mutates its way
// into the corners. scripts/fuzz.sh runs it before every fuzzing run, so the
// seeds always follow formats.h.
//
//   fuzz_seeds <dir>   writes <dir>/fuzz_frame/*, <dir>/fuzz_handshake/*, <dir>/fuzz_tcp_recv/*
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz/formats.h"
#include "transports/tcp/frame.h"
#include "transports/tcp/handshake.h"

namespace gccl::fuzz {
namespace {

using Bytes = std::vector<uint8_t>;

void put(Bytes* b, const uint8_t* p, size_t n) {
  b->insert(b->end(), p, p + n);
}
void put8(Bytes* b, uint8_t v) {
  b->push_back(v);
}
void put16(Bytes* b, uint16_t v) {
  uint8_t p[2];
  tcp::putLe16(p, v);
  put(b, p, 2);
}
void put32(Bytes* b, uint32_t v) {
  uint8_t p[4];
  tcp::putLe32(p, v);
  put(b, p, 4);
}
void put64(Bytes* b, uint64_t v) {
  uint8_t p[8];
  tcp::putLe64(p, v);
  put(b, p, 8);
}
// The inverse of FuzzInput::size().
void putSize(Bytes* b, uint64_t v) {
  if (v < 0x80) {
    put8(b, static_cast<uint8_t>(v));
  } else if (v < (1u << 14)) {
    put8(b, static_cast<uint8_t>(0x80 | (v >> 8)));
    put8(b, static_cast<uint8_t>(v));
  } else if (v < (1u << 20)) {
    put8(b, static_cast<uint8_t>(0xc0 | (v >> 16)));
    put16(b, static_cast<uint16_t>(v));
  } else {
    put8(b, 0xf0);
    put64(b, v);
  }
}

bool write(const std::string& dir, const char* name, const Bytes& b) {
  std::string path = dir + "/" + name;
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr || fwrite(b.data(), 1, b.size(), f) != b.size() || fclose(f) != 0) {
    fprintf(stderr, "fuzz_seeds: cannot write %s: %s\n", path.c_str(), strerror(errno));
    return false;
  }
  return true;
}

bool makeDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return true;
  fprintf(stderr, "fuzz_seeds: cannot create %s: %s\n", dir.c_str(), strerror(errno));
  return false;
}

// ---- fuzz_frame ---------------------------------------------------------------

Bytes frameSeed(tcp::FrameType type, uint64_t total, uint64_t offset, uint64_t length) {
  tcp::FrameHeader h;
  h.type = type;
  h.commHash = kCommHash;
  h.tag = 7;
  h.metaInfo = 1;
  h.metaCount = 2;
  h.totalBytes = total;
  h.offset = offset;
  h.length = length;
  Bytes b(tcp::kFrameHeaderBytes);
  tcp::encodeFrameHeader(h, b.data());
  put64(&b, kCommHash);
  // The same header again, field by field.
  put16(&b, static_cast<uint16_t>(type));
  for (uint64_t v : {kCommHash, h.tag, h.metaInfo, h.metaCount, total, offset, length})
    put64(&b, v);
  return b;
}

bool frameSeeds(const std::string& dir) {
  return write(dir, "data", frameSeed(tcp::FrameType::kData, 1 << 20, 1 << 19, 1 << 18)) &&
         write(dir, "abort", frameSeed(tcp::FrameType::kAbort, 12, 0, 12)) &&
         write(dir, "ping", frameSeed(tcp::FrameType::kPing, 0, 0, 0));
}

// ---- fuzz_handshake -----------------------------------------------------------

void preamble(Bytes* b, uint16_t kind) {
  put32(b, tcp::kFrameMagic);
  put16(b, tcp::kWireVersion);
  put16(b, kind);
}

// A connector's HELLO; the harness fills in the MAC (kHsSign).
void hello(Bytes* b) {
  preamble(b, 2);
  put64(b, kCommHash);
  put32(b, static_cast<uint32_t>(tcp::Purpose::kData));
  put32(b, 3);                     // fromRank
  put32(b, 1);                     // toRank
  put32(b, 2);                     // channel
  b->resize(b->size() + 16 + 32);  // nonce, MAC
}

bool handshakeSeeds(const std::string& dir) {
  Bytes server{kHsSign, 0};
  hello(&server);
  Bytes chunked{kHsSign | kHsHangUp, 3, 5, 40, 20};
  hello(&chunked);
  Bytes client{kHsClientSide | kHsSign, 0};
  preamble(&client, 1);
  client.resize(client.size() + 16);  // nonce
  preamble(&client, 3);
  client.resize(client.size() + 32);  // MAC, filled in by the harness
  Bytes unsignedClient = client;
  unsignedClient[0] = kHsClientSide;
  return write(dir, "server", server) && write(dir, "server_chunked", chunked) &&
         write(dir, "client", client) && write(dir, "client_unsigned", unsignedClient);
}

// ---- fuzz_tcp_recv ------------------------------------------------------------

void post(Bytes* b, uint8_t slot, uint8_t tagIndex, uint8_t meta, uint64_t capacity) {
  put8(b, kOpPost);
  put8(b, slot);
  put8(b, tagIndex);
  put8(b, meta);
  putSize(b, capacity);
}

void frame(Bytes* b, uint8_t socket, tcp::FrameType type, uint8_t flags, uint8_t tagIndex,
           uint8_t meta, uint64_t total, uint64_t offset, uint64_t length) {
  put8(b, kOpFrame);
  put8(b, socket);
  put8(b, static_cast<uint8_t>(static_cast<uint8_t>(type) - 1));
  put8(b, flags);
  put8(b, tagIndex);
  put8(b, meta);
  putSize(b, total);
  putSize(b, offset);
  putSize(b, length);
}

bool tcpSeeds(const std::string& dir) {
  constexpr uint8_t kAny = 0x80;
  constexpr uint8_t kMeta = 1 | (2 << 2);  // info 1, count 2
  // One small message on the only data socket (socket 2), its receive posted first.
  Bytes small{0};
  post(&small, 0, 1, kAny, 100);
  frame(&small, 2, tcp::FrameType::kData, kFrameWholeMessage, 1, kMeta, 100, 0, 0);
  put8(&small, kOpDrive);
  // A message striped over two data sockets, arriving before its receive is
  // posted (both sockets pause), with the sender's meta checked.
  Bytes striped{1};
  frame(&striped, 2, tcp::FrameType::kData, 0, 2, kMeta, 10000, 0, 5000);
  frame(&striped, 3, tcp::FrameType::kData, 0, 2, kMeta, 10000, 5000, 5000);
  put8(&striped, kOpDrive);
  post(&striped, 1, 2, kMeta, 10000);
  put8(&striped, kOpDrive);
  // A large payload read straight into the buffer, and an asynchronous one on socket 1.
  Bytes large{0};
  post(&large, 0, 3, kAny, 250000);
  post(&large, 1, 4, kAny, 64);
  frame(&large, 2, tcp::FrameType::kData, kFrameWholeMessage, 3, kMeta, 250000, 0, 0);
  frame(&large, 1, tcp::FrameType::kData, kFrameWholeMessage, 4, kMeta, 64, 0, 0);
  put8(&large, kOpDrive);
  // The control socket: a ping (answered), a goodbye, then the peer's EOF everywhere.
  Bytes control{2};
  frame(&control, 0, tcp::FrameType::kPing, kFrameWholeMessage, 0, 0, 0, 0, 0);
  frame(&control, 0, tcp::FrameType::kClose, kFrameWholeMessage, 0, 0, 0, 0, 0);
  put8(&control, kOpDrive);
  for (uint8_t s = 0; s < 5; ++s) {
    put8(&control, kOpPeerShutdown);
    put8(&control, s);
  }
  put8(&control, kOpDrive);
  // An abort notice with its reason, while a receive waits.
  Bytes abort{0};
  post(&abort, 0, 1, kAny, 16);
  frame(&abort, 0, tcp::FrameType::kAbort, kFrameWholeMessage, 0, 0, 20, 0, 0);
  put8(&abort, kOpDrive);
  // This side sends (one striped message, one asynchronous), pings and says goodbye.
  Bytes sends{5};
  for (uint8_t tagIndex : {1, 4}) {
    put8(&sends, kOpSend);
    put8(&sends, tagIndex == 1 ? 0 : 1);
    put8(&sends, tagIndex);
    put8(&sends, kMeta);
    putSize(&sends, tagIndex == 1 ? 12000 : 10);
  }
  put8(&sends, kOpPing);
  put8(&sends, kOpDrive);
  put8(&sends, kOpGoodbye);
  put8(&sends, kOpDrive);
  // Headers and payloads in pieces, as TCP may deliver them: the peer writes a
  // few bytes per round on the data and control sockets.
  Bytes pieces{0};
  for (uint8_t socket : {2, 0}) {
    put8(&pieces, kOpTrickle);
    put8(&pieces, socket);
    put8(&pieces, socket == 2 ? 7 : 5);
  }
  post(&pieces, 0, 1, kMeta, 5000);
  frame(&pieces, 2, tcp::FrameType::kData, kFrameWholeMessage, 1, kMeta, 5000, 0, 0);
  frame(&pieces, 0, tcp::FrameType::kPing, kFrameWholeMessage, 0, 0, 0, 0, 0);
  put8(&pieces, kOpDrive);
  // One message sent twice over on two data sockets, the first copy arriving
  // in pieces: the second must be refused before the message completes.
  Bytes overlap{1};
  put8(&overlap, kOpTrickle);
  put8(&overlap, 2);
  put8(&overlap, 100);
  post(&overlap, 0, 1, kAny, 200);
  frame(&overlap, 2, tcp::FrameType::kData, kFrameWholeMessage, 1, 0, 200, 0, 0);
  frame(&overlap, 3, tcp::FrameType::kData, kFrameWholeMessage, 1, 0, 200, 0, 0);
  put8(&overlap, kOpDrive);
  return write(dir, "overlap", overlap) && write(dir, "pieces", pieces) &&
         write(dir, "small", small) && write(dir, "striped", striped) &&
         write(dir, "large", large) && write(dir, "control", control) &&
         write(dir, "abort", abort) && write(dir, "sends", sends);
}

}  // namespace
}  // namespace gccl::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  std::string root = argv[1];
  std::string frame = root + "/fuzz_frame", handshake = root + "/fuzz_handshake",
              tcp = root + "/fuzz_tcp_recv";
  bool ok = gccl::fuzz::makeDir(root) && gccl::fuzz::makeDir(frame) &&
            gccl::fuzz::makeDir(handshake) && gccl::fuzz::makeDir(tcp) &&
            gccl::fuzz::frameSeeds(frame) && gccl::fuzz::handshakeSeeds(handshake) &&
            gccl::fuzz::tcpSeeds(tcp);
  return ok ? 0 : 1;
}

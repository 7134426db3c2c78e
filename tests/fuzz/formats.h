// What the fuzz targets make of their input, shared with the seed generator
// (fuzz_seeds.cc) so that the seeds in tests/fuzz/corpus stay meaningful when
// a target changes.
#pragma once

#include <cstdint>

#include "transports/transport.h"

namespace gccl::fuzz {

// Both handshake sides and the receive path use one communicator.
inline constexpr uint64_t kCommHash = 0x6363636c2d66757aull;
inline constexpr uint8_t kSecretSeed = 0x5a;  // secret[i] = kSecretSeed + i

// ---- fuzz_frame -------------------------------------------------------------
// bytes 0..63   the frame header as it came off the wire
// bytes 64..71  the communicator hash the receiver expects (little-endian);
//               when absent, the header's own hash is expected
// bytes 72..    a FrameHeader given field by field (type u16, then commHash,
//               tag, metaInfo, metaCount, totalBytes, offset, length as u64)
//               that is encoded and decoded again

// ---- fuzz_handshake ---------------------------------------------------------
// byte 0: flags (below). byte 1: how many chunk sizes follow (modulo 8), then
// the chunk sizes (one byte each); the rest is the peer's byte stream, written
// in those chunks, the last chunk taking what is left.
//   server side: the stream is the connector's HELLO and anything after it;
//   client side: the stream is the acceptor's CHALLENGE (24 bytes), then its
//                PROOF and anything after it.
enum HandshakeFlags : uint8_t {
  kHsClientSide = 1,  // drive clientHandshake; otherwise ServerHandshake
  kHsSign = 2,        // the harness puts a valid MAC where the MAC goes
  kHsHangUp = 4,      // server side: the peer then shuts its writing side (EOF); the
                      // client side always gets EOF after the stream
};

// ---- fuzz_tcp_recv ----------------------------------------------------------
// byte 0: setup: (b % 3) + 1 data sockets (so 3 to 5 sockets in all, the
// control and asynchronous ones first); bit 2: emulated latency on (1 us).
// Then operations, one byte each (modulo kOpCount) followed by its operands.
// "socket" operands are one byte modulo the number of sockets; "tag" one byte
// (below 0xf0: one of kFuzzTags, otherwise 8 raw bytes follow); "meta" one byte
// (info = b & 3, count = (b >> 2) & 3; for a receive, bit 7 accepts any);
// "size" as FuzzInput::size().
enum TcpOp : uint8_t {
  kOpRaw = 0,           // socket, n = byte + 1, then n bytes the peer writes
  kOpFrame = 1,         // socket, type, flags, tag, meta, total, offset, length:
                        // the peer writes a header and (up to a cap) that much payload
  kOpPost = 2,          // slot, tag, meta, capacity: irecv into a buffer of exactly that size
  kOpCancel = 3,        // slot: cancel that receive if it is pending
  kOpDrive = 4,         // deliver what epoll reports until nothing is ready
  kOpSend = 5,          // slot, tag, meta, size: isend
  kOpPing = 6,          // sendPing
  kOpGoodbye = 7,       // sendCloseNotice
  kOpPeerShutdown = 8,  // socket: the peer shuts its writing side (EOF) once its bytes are out
  kOpPeerClose = 9,     // socket: the peer closes the socket once its bytes are out
  kOpPeerReset = 10,    // socket: the peer closes the socket now, unread bytes and all
  kOpTrickle = 11,      // socket, n: from now on the peer writes at most n bytes per round
                        // (0: no limit), so headers and payloads arrive in pieces
  kOpCount = 12,
};
// kOpFrame's type byte: below 0xf8, FrameType 1 + b % 5; otherwise the raw
// value b - 0xf8 (0..7, mostly invalid).
// kOpFrame's flags byte:
enum FrameFlags : uint8_t {
  kFrameWholeMessage = 1,  // ignore offset and length operands: one frame, all of it
  kFrameBadHash = 2,
  kFrameBadMagic = 4,
  kFrameBadVersion = 8,
};
inline constexpr uint64_t kFuzzTags[] = {
    0, 1, 2, (uint64_t{5} << 24) | 3, transport::kAsyncTagBit | 1, transport::kAsyncTagBit | 2,
};
inline constexpr int kRecvSlots = 6;
inline constexpr int kSendSlots = 3;

}  // namespace gccl::fuzz

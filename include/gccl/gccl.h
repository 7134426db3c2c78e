/*
 * gccl — Gossip Collective Communication Library: the public C API.
 *
 * This is the only header a user includes. It is plain C (C11) and C++.
 *
 * Conventions
 *  - Every call returns a gcclResult_t. On failure, gcclGetErrorString(result)
 *    names the class of error and gcclGetLastError(comm) gives the reason, naming
 *    the argument or the peer at fault.
 *  - Output arguments come last and are written only on success.
 *  - Collectives follow NCCL's argument order. Each takes a trailing
 *    `gcclRequest_t* request`:
 *      request == NULL  the call returns when the operation is complete (host
 *                       memory), or once it is enqueued on `stream` (CUDA);
 *      request != NULL  the call returns at once with a request handle that
 *                       gcclTest / gcclWait complete and release.
 *    Every rank of a communicator must issue collectives in the same order,
 *    with the same arguments (count, type, reduction, root, topology): ranks
 *    compare signatures, and a mismatch is an error on the ranks that see it
 *    and breaks the communicator, so every rank has it by its next call.
 *  - Threads: calls that issue operations on one communicator (collectives,
 *    point-to-point, gossip steps) must come from one thread at a time, in an
 *    order the program fixes on every rank (as MPI requires). A call from a
 *    second thread while another thread is inside such a call on the same
 *    communicator breaks it on every rank with gcclInvalidUsage: which call
 *    pairs with which could differ between ranks. A thread may issue after
 *    another thread's call returned (its request may still be in flight), and
 *    gcclWait, gcclTest, gcclCommAbort and gcclCommGetAsyncError may come from
 *    any thread. Ranks whose threads take turns without overlapping but in
 *    different orders cannot be told apart from a correct program.
 *  - Counts: the byte size of every buffer (count times the element size,
 *    times the rank count for gathered buffers) must fit in 2^46 bytes; a
 *    larger or overflowing count (a negative int passed by mistake) is
 *    refused with gcclInvalidArgument before anything happens.
 *  - Every wait has a deadline: no call blocks longer than the communicator's
 *    timeout without data moving (gcclConfig_t.timeoutMs, GCCL_TIMEOUT_MS).
 *    A peer that stopped answering is reported after at most that long; one
 *    that answers but has not called the operation is reported after one
 *    timeout, naming its last call.
 */
#ifndef GCCL_GCCL_H_
#define GCCL_GCCL_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define GCCL_EXPORT
#elif defined(__GNUC__)
#define GCCL_EXPORT __attribute__((visibility("default")))
#else
#define GCCL_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ---------------------------------------------------------- */

#define GCCL_MAJOR 0
#define GCCL_MINOR 1
#define GCCL_PATCH 0
/* One integer that orders versions: MAJOR*10000 + MINOR*100 + PATCH. */
#define GCCL_VERSION_CODE (GCCL_MAJOR * 10000 + GCCL_MINOR * 100 + GCCL_PATCH)

/* ---- Results ---------------------------------------------------------- */

typedef enum {
  gcclSuccess = 0,
  gcclUnhandledCudaError = 1, /* a CUDA call failed */
  gcclSystemError = 2,        /* a system call failed (socket, memory, thread) */
  gcclInternalError = 3,      /* a bug in gccl, or a corrupt frame from a peer */
  gcclInvalidArgument = 4,    /* an argument is wrong: null buffer, bad type, rank out of range */
  gcclInvalidUsage = 5,       /* a call in the wrong state: use after destroy, mismatched calls */
  gcclRemoteError = 6,        /* a peer failed, closed its connection or aborted */
  gcclInProgress = 7,         /* a non-blocking operation has not finished yet */
  gcclTimeout = 8,            /* nothing moved before the deadline: a peer is stopped or gone */
  gcclAborted = 9,            /* the communicator was aborted (gcclCommAbort) */
  gcclNumResults = 10
} gcclResult_t;

/* ---- Data types and reductions ------------------------------------------ */

typedef enum {
  gcclInt8 = 0,
  gcclChar = 0,
  gcclUint8 = 1,
  gcclInt32 = 2,
  gcclInt = 2,
  gcclUint32 = 3,
  gcclInt64 = 4,
  gcclUint64 = 5,
  gcclFloat16 = 6,
  gcclHalf = 6,
  gcclFloat32 = 7,
  gcclFloat = 7,
  gcclFloat64 = 8,
  gcclDouble = 8,
  gcclBfloat16 = 9,
  gcclNumTypes = 10,
  /* Not a type: widens the enum to every int, so that a wrong value from a
   * caller is a checked argument error and never undefined behaviour in C++. */
  gcclDataTypeRangeMin_ = -2147483647 - 1,
  gcclDataTypeRangeMax_ = 2147483647
} gcclDataType_t;

/* Reductions. Half types (float16, bfloat16) accumulate in float32. Integer
 * sums wrap modulo 2^bits; integer averages divide with truncation toward zero. */
typedef enum {
  gcclSum = 0,
  gcclProd = 1,
  gcclMax = 2,
  gcclMin = 3,
  gcclAvg = 4,
  gcclNumOps = 5,
  gcclRedOpRangeMin_ = -2147483647 - 1, /* not reductions: see gcclDataType_t */
  gcclRedOpRangeMax_ = 2147483647
} gcclRedOp_t;

/* ---- Handles ------------------------------------------------------------ */

typedef struct gcclComm* gcclComm_t;
typedef struct gcclRequest* gcclRequest_t;
/* A CUDA stream (cudaStream_t) for device buffers; NULL for host buffers. */
typedef void* gcclStream_t;

#define GCCL_UNIQUE_ID_BYTES 128
/* Produced by gcclGetUniqueId on one rank and passed to every rank by the
 * user (or by a launcher). It names the rendezvous address and carries a
 * random secret that every connection must prove it knows: treat it as a
 * credential. */
typedef struct {
  char internal[GCCL_UNIQUE_ID_BYTES];
} gcclUniqueId;

/* ---- Configuration -------------------------------------------------------
 * A growable struct: always start from GCCL_CONFIG_INITIALIZER so that size,
 * magic and version are filled in; fields left at GCCL_CONFIG_UNDEF_* take the
 * value of the matching GCCL_* environment variable, or its default. */

#define GCCL_CONFIG_MAGIC 0x6763636cu /* "gccl" */
#define GCCL_CONFIG_UNDEF_INT (-2147483647 - 1)
#define GCCL_CONFIG_UNDEF_PTR NULL

typedef struct {
  size_t size;          /* sizeof(gcclConfig_t) as the caller compiled it */
  unsigned int magic;   /* GCCL_CONFIG_MAGIC */
  unsigned int version; /* GCCL_VERSION_CODE as the caller compiled it */
  /* 1: gcclCommInitRankConfig returns when the communicator is ready.
   * 0: it returns at once; gcclCommGetAsyncError reports gcclInProgress until
   *    the communicator is ready (or failed). Default 1. */
  int blocking;
  /* Deadline in milliseconds for any wait without progress (init, a collective
   * whose peers send nothing). At least 1000: a smaller value makes init fail
   * with gcclInvalidArgument. Default GCCL_TIMEOUT_MS. */
  int timeoutMs;
  /* TCP data sockets per peer, striped for bandwidth (1-16; 0: 1 to a peer on
   * this host, 2 to others). Default GCCL_NSOCKS_PERPEER. */
  int nSocketsPerPeer;
  /* Interface selection in NCCL's syntax ("eth", "^docker", "=eth0").
   * Default GCCL_SOCKET_IFNAME. */
  const char* socketIfname;
  /* Transports allowed, in order of preference: "auto", "tcp", "shm" or a
   * list such as "shm,tcp" (docs/PARAMETERS.md). Default GCCL_TRANSPORT. */
  const char* transport;
  /* 1: fault-tolerant mode. A peer that dies (its connection breaks) or stops
   * (no liveness answer within half the timeout) no longer breaks the
   * communicator: the survivors agree on who is alive, and gossip steps
   * (gcclPushSum, gcclNeighborAverage, their Ex forms, and overlap SGP's
   * gcclGossipStart/Finish) go on among them with the topology re-formed over
   * the survivors, and what could not be delivered to a failed peer stays
   * with the sender; exact collectives fail with an error naming the failed
   * ranks (gcclCommGetFailedRanks) until the survivors shrink
   * (gcclCommShrink). Pairwise gossip picks partners among the live
   * neighbours; an exchange whose partner failed returns partner -1 and
   * changes nothing. 0: any failure breaks the communicator, as in NCCL.
   * Default GCCL_FAULT_TOLERANT. */
  int faultTolerant;
} gcclConfig_t;

#define GCCL_CONFIG_INITIALIZER                                                        \
  {                                                                                    \
    sizeof(gcclConfig_t), GCCL_CONFIG_MAGIC, GCCL_VERSION_CODE, GCCL_CONFIG_UNDEF_INT, \
        GCCL_CONFIG_UNDEF_INT, GCCL_CONFIG_UNDEF_INT, GCCL_CONFIG_UNDEF_PTR,           \
        GCCL_CONFIG_UNDEF_PTR, GCCL_CONFIG_UNDEF_INT                                   \
  }

/* ---- Library ------------------------------------------------------------ */

/* The library's version as GCCL_VERSION_CODE. */
GCCL_EXPORT gcclResult_t gcclGetVersion(int* version);
/* A static string naming the result class. Never NULL. */
GCCL_EXPORT const char* gcclGetErrorString(gcclResult_t result);
/* The reason for the last failed call on `comm` (NULL: the last failed call of
 * this thread that had no communicator). A pointer valid until the next call
 * on that communicator from this thread; "" when there is nothing to report. */
GCCL_EXPORT const char* gcclGetLastError(gcclComm_t comm);

/* ---- Communicators ------------------------------------------------------ */

/* Creates a unique id. The calling process serves the rendezvous until every
 * rank has joined (or the timeout, GCCL_TIMEOUT_MS, passes; below its minimum
 * of 1000 ms the call fails with gcclInvalidArgument), so call it on a rank
 * that lives through initialization. With GCCL_COMM_ID=host:port set, the id
 * names that address instead and the rendezvous is served by rank 0 at init. */
GCCL_EXPORT gcclResult_t gcclGetUniqueId(gcclUniqueId* uniqueId);

/* Collective over all `nranks` ranks: creates the communicator of `rank`. */
GCCL_EXPORT gcclResult_t gcclCommInitRank(gcclComm_t* comm, int nranks, gcclUniqueId commId,
                                          int rank);
GCCL_EXPORT gcclResult_t gcclCommInitRankConfig(gcclComm_t* comm, int nranks, gcclUniqueId commId,
                                                int rank, gcclConfig_t* config);
/* Creates the communicator from a launcher's environment: rank and size from
 * Open MPI's mpirun (OMPI_COMM_WORLD_*), PMI (PMI_RANK/PMI_SIZE), SLURM's srun
 * (SLURM_PROCID/SLURM_NTASKS) or torchrun (RANK/WORLD_SIZE); rendezvous at
 * GCCL_COMM_ID=host:port, else MASTER_ADDR and MASTER_PORT+GCCL_PORT_OFFSET,
 * else (all ranks on one host) through a private file named after the job.
 * `config` may be NULL. */
GCCL_EXPORT gcclResult_t gcclCommInitFromEnv(gcclComm_t* comm, gcclConfig_t* config);

/* Waits for outstanding operations (up to the timeout), then frees the
 * communicator. `comm` must not be used afterwards; calls on it fail with
 * gcclInvalidUsage as long as the memory has not been reused. Refused
 * (gcclInvalidUsage) while this thread's open group holds calls on `comm`:
 * end the group first, or abort. */
GCCL_EXPORT gcclResult_t gcclCommDestroy(gcclComm_t comm);
/* Stops every operation of `comm` at once, from any thread: waiting calls
 * return gcclAborted; peers are told. Calls on `comm` that this thread's open
 * group holds end with gcclAborted. Then frees the communicator. */
GCCL_EXPORT gcclResult_t gcclCommAbort(gcclComm_t comm);
/* gcclSuccess, gcclInProgress during non-blocking init, or the error that
 * broke the communicator (a failed peer, a timeout, an abort). */
GCCL_EXPORT gcclResult_t gcclCommGetAsyncError(gcclComm_t comm, gcclResult_t* asyncError);
GCCL_EXPORT gcclResult_t gcclCommCount(const gcclComm_t comm, int* count);
GCCL_EXPORT gcclResult_t gcclCommUserRank(const gcclComm_t comm, int* rank);

/* ---- Counters ------------------------------------------------------------
 * Traffic between this rank and one peer since the communicator was created.
 * A growable struct like gcclConfig_t: start from
 * GCCL_PEER_COUNTERS_INITIALIZER, which fills in size, magic and version. */

#define GCCL_PEER_COUNTERS_MAGIC 0x67636370u /* "gccp" */

typedef struct {
  size_t size;          /* sizeof(gcclPeerCounters_t) as the caller compiled it */
  unsigned int magic;   /* GCCL_PEER_COUNTERS_MAGIC */
  unsigned int version; /* GCCL_VERSION_CODE as the caller compiled it */
  /* Payload bytes of this rank's messages to the peer that have been written
   * to the transport (frame headers and control traffic are not counted). */
  uint64_t bytesSent;
  /* Payload bytes from the peer delivered into this rank's receive buffers. */
  uint64_t bytesReceived;
  /* Messages to the peer whose send completed. */
  uint64_t messagesSent;
  /* Messages from the peer whose receive completed. */
  uint64_t messagesReceived;
} gcclPeerCounters_t;

#define GCCL_PEER_COUNTERS_INITIALIZER \
  { sizeof(gcclPeerCounters_t), GCCL_PEER_COUNTERS_MAGIC, GCCL_VERSION_CODE, 0, 0, 0, 0 }

/* Reads the traffic between this rank and `peer` (0 <= peer < nranks; this
 * rank itself gives its sends to itself, each of which is also a receive).
 * Counted is every message gccl moved for this communicator: point-to-point
 * calls, the messages collectives and gossip exchange (as many as their
 * algorithm needs), one per completed send or receive, and the payload bytes
 * each carried (a message without payload counts as a message of 0 bytes).
 * Failed and cancelled sends and receives are not counted as messages (payload
 * a transport had already moved for one may be in the byte counts).
 *
 * Any thread may call it at any time after initialization, also while other
 * threads are inside calls on `comm`, and after the communicator broke (a
 * peer failed, an abort notice): the counts then stay as they were when it
 * broke. Once a call (or its request) completed, its traffic is included.
 * While traffic flows, each field is exact as of some recent moment, but the
 * four may be from two different moments.
 *
 * `counters->size` must cover at least bytesSent (a struct compiled against
 * an older header is filled as far as its size reaches, nothing beyond) and
 * `counters->magic` must be GCCL_PEER_COUNTERS_MAGIC. Errors, after which
 * nothing is written: gcclInvalidArgument for a NULL comm or counters, a bad
 * magic, a size too small, or a peer out of range; gcclInvalidUsage for a
 * communicator that is destroyed or failed to initialize; gcclInProgress while
 * a non-blocking initialization runs. */
GCCL_EXPORT gcclResult_t gcclCommGetPeerCounters(gcclComm_t comm, int peer,
                                                 gcclPeerCounters_t* counters);

/* ---- Failures (fault-tolerant mode) -------------------------------------- */

/* A rank this rank considers failed, and why ("rank 2 closed the connection
 * while receiving (did it exit?)", "rank 2 did not respond for 1500 ms ...",
 * "the survivors agreed that it failed"). */
typedef struct {
  int rank;
  char reason[256];
} gcclFailedRank_t;

/* The ranks this rank considers failed, in the order it learned of them: up
 * to `capacity` entries go to `failed` (which may be NULL when capacity is 0)
 * and *count is set to how many there are in all. Any thread, at any time
 * after initialization. In fault-tolerant mode the survivors agree on the
 * list before any of them mixes with a graph that leaves a rank out; a rank
 * may learn of a failure a moment before the others. Without fault-tolerant
 * mode the list stays empty (a failure breaks the communicator instead:
 * gcclCommGetAsyncError, gcclGetLastError). Errors: gcclInvalidArgument for a
 * NULL comm or count, a negative capacity, or failed NULL with capacity > 0;
 * gcclInvalidUsage for a destroyed communicator. */
GCCL_EXPORT gcclResult_t gcclCommGetFailedRanks(gcclComm_t comm, gcclFailedRank_t* failed,
                                                int capacity, int* count);

/* Fault-tolerant mode: a new communicator of the ranks the survivors agreed
 * are alive (every rank gcclCommGetFailedRanks does not list), numbered in
 * their order in `comm`, made without a new unique id: the lowest survivor
 * makes one and sends it to the others over `comm`'s connections. Every
 * survivor calls it; it waits until the survivors' agreement has settled,
 * then returns once the new communicator is ready. `config` as in
 * gcclCommInitRankConfig (NULL: the settings of `comm`). `comm` stays usable
 * for gossip and must still be destroyed. Errors: gcclInvalidArgument for a
 * NULL newcomm; gcclInvalidUsage when `comm` is not in fault-tolerant mode or
 * inside a group; gcclRemoteError when another rank fails during the shrink
 * (call it again) or the survivors left this rank out. */
GCCL_EXPORT gcclResult_t gcclCommShrink(gcclComm_t comm, gcclConfig_t* config, gcclComm_t* newcomm);

/* Fault-tolerant mode: a process restarted as `rank` re-enters the running
 * communicator that `commId` (the id every rank was created with) names.
 * The rendezvous root of a fault-tolerant communicator keeps serving for
 * this; the process that serves it (the one that made the id, rank 0 under
 * launchers) must still be alive. The restarted rank connects over TCP to
 * every member it can reach, and the survivors agree on a view that takes
 * it in (an old process of the same rank still counted alive is failed
 * first). Returns once that view is agreed; the rank's first collective must
 * then be gcclGossipJoin. `config` as in gcclCommInitRankConfig; fault-
 * tolerant mode is implied. Errors: those of gcclCommInitRankConfig;
 * gcclInvalidArgument when config.faultTolerant is 0; gcclTimeout when the
 * survivors did not take it in within the timeout; gcclInvalidUsage (or a
 * connection error) when the root no longer serves. gcclCommInitFromEnv does
 * the same when GCCL_REJOIN=1. */
GCCL_EXPORT gcclResult_t gcclCommRejoin(gcclComm_t* comm, int nranks, gcclUniqueId commId, int rank,
                                        gcclConfig_t* config);

/* ---- Requests ----------------------------------------------------------- */

/* *done = 1 when the request finished; then it is released and its result
 * returned. *done = 0 while it runs (returns gcclSuccess). A released
 * request is no longer valid: gcclTest or gcclWait on it again returns
 * gcclInvalidUsage (as long as its memory has not been reused). */
GCCL_EXPORT gcclResult_t gcclTest(gcclRequest_t request, int* done);
/* Blocks until the request finishes (or the communicator's deadline passes),
 * releases it and returns its result. gcclInvalidUsage for a request whose
 * call an open group still holds (it could never finish before
 * gcclGroupEnd), or one already released. */
GCCL_EXPORT gcclResult_t gcclWait(gcclRequest_t request);

/* ---- Groups --------------------------------------------------------------
 * Calls between gcclGroupStart and gcclGroupEnd are queued and started
 * together at gcclGroupEnd, so that matching sends and receives in one group
 * never deadlock. gcclGroupEnd waits for the queued calls that were given no
 * request. Groups nest; only the outermost End starts the calls. */
GCCL_EXPORT gcclResult_t gcclGroupStart(void);
GCCL_EXPORT gcclResult_t gcclGroupEnd(void);

/* ---- Collectives --------------------------------------------------------
 * `count` is in elements of `datatype`. In-place when sendbuff == recvbuff
 * (for AllGather: sendbuff == recvbuff + rank*count; for ReduceScatter:
 * sendbuff + rank*recvcount == recvbuff). Broadcast's root returns once the
 * last rank has its data, so ranks that name different roots get an error
 * instead of each keeping its own data. */

GCCL_EXPORT gcclResult_t gcclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                       gcclDataType_t datatype, gcclRedOp_t op, gcclComm_t comm,
                                       gcclStream_t stream, gcclRequest_t* request);
/* Root's sendbuff is copied into every rank's recvbuff. */
GCCL_EXPORT gcclResult_t gcclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                       gcclDataType_t datatype, int root, gcclComm_t comm,
                                       gcclStream_t stream, gcclRequest_t* request);
/* recvbuff is written on root only (it may be NULL elsewhere). */
GCCL_EXPORT gcclResult_t gcclReduce(const void* sendbuff, void* recvbuff, size_t count,
                                    gcclDataType_t datatype, gcclRedOp_t op, int root,
                                    gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request);
/* recvbuff holds nranks*sendcount elements, rank r's at r*sendcount. */
GCCL_EXPORT gcclResult_t gcclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                       gcclDataType_t datatype, gcclComm_t comm,
                                       gcclStream_t stream, gcclRequest_t* request);
/* sendbuff holds nranks*recvcount elements; rank r gets the reduction of
 * block r. */
GCCL_EXPORT gcclResult_t gcclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                           gcclDataType_t datatype, gcclRedOp_t op, gcclComm_t comm,
                                           gcclStream_t stream, gcclRequest_t* request);
/* Returns on each rank once every rank has entered it. */
GCCL_EXPORT gcclResult_t gcclBarrier(gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request);

/* ---- Point to point ------------------------------------------------------
 * Sends and receives between two ranks match in posting order. A receive
 * buffer may be larger than the matching send; a send larger than the
 * receive is an error on both sides. Put a rank's sends and receives that
 * depend on each other in one group. A send or receive with this rank itself
 * as the peer must be paired in one group: a blocking one outside a group is
 * refused, and a non-blocking one whose partner is missing fails its request
 * (gcclInvalidUsage) instead of waiting forever. */
GCCL_EXPORT gcclResult_t gcclSend(const void* sendbuff, size_t count, gcclDataType_t datatype,
                                  int peer, gcclComm_t comm, gcclStream_t stream,
                                  gcclRequest_t* request);
GCCL_EXPORT gcclResult_t gcclRecv(void* recvbuff, size_t count, gcclDataType_t datatype, int peer,
                                  gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request);

/* ---- Wire codecs ----------------------------------------------------------
 * What a compressing call puts on the wire instead of the tensor (SPEC 2.6).
 * A gcclCodecConfig_t names the codec and its settings; gcclCodecEncode and
 * gcclCodecDecode apply it to a tensor, and the gossip calls that take a
 * gcclGossipOptions_t send their messages encoded with it. Sender and
 * receiver must use equal configurations (a gossip step whose ranks differ
 * fails, naming the difference). The push-sum weight is never compressed. */

typedef enum {
  gcclCodecNone = 0,     /* the tensor as it is (gossip: the uncompressed path) */
  gcclCodecFloat16 = 1,  /* float32/float64 as IEEE float16, round to nearest even */
  gcclCodecBfloat16 = 2, /* float32/float64 as bfloat16, round to nearest even */
  /* b-bit uniform quantization per bucket of `bucket` elements (any floating
   * type): per bucket a minimum and a scale (float32; float64 for float64
   * tensors), codes of `bits` bits. |x - decode(x)| <= scale/2 to nearest,
   * < scale stochastically (unbiased). NaN or Inf elements are refused. */
  gcclCodecQuantize = 3,
  /* SwarmSGD's lattice (modulo) quantization: x / latticeStep rounded, sent
   * modulo 2^bits, decoded against the receiver's own tensor. Exact while the
   * two tensors differ by less than (2^(bits-1) - 1) * latticeStep per element
   * (nearest; - 1.5 steps stochastically); beyond that, decoding fails (a
   * per-bucket 64-bit check) instead of giving a wrong value. */
  gcclCodecLattice = 4,
  /* The k entries of largest magnitude (float32 only), as indices and values;
   * k = topkCount, or ceil(topkFraction * n) of the n elements encoded. */
  gcclCodecTopK = 5,
  gcclCodecRangeMin_ = -2147483647 - 1, /* not codecs: see gcclDataType_t */
  gcclCodecRangeMax_ = 2147483647
} gcclCodec_t;

typedef enum {
  gcclRoundNearest = 0,
  gcclRoundStochastic = 1, /* seeded and reproducible: the same seed gives the same bytes */
  gcclRoundingRangeMin_ = -2147483647 - 1,
  gcclRoundingRangeMax_ = 2147483647
} gcclRounding_t;

typedef enum {
  gcclTopKExact = 0,     /* exactly the k largest (ties: the lower index) */
  gcclTopKThreshold = 1, /* a threshold estimated from a seeded sample, then trimmed to k */
  gcclTopKSelectRangeMin_ = -2147483647 - 1,
  gcclTopKSelectRangeMax_ = 2147483647
} gcclTopKSelect_t;

#define GCCL_CODEC_CONFIG_MAGIC 0x67636364u /* "gccd" */

/* A growable struct like gcclConfig_t: start from GCCL_CODEC_CONFIG_INITIALIZER
 * (the uncompressed codec, 8 bits, buckets of 1024, rounding to nearest, top-k
 * by exact selection of 1%). Each codec reads only the fields named for it;
 * the others must keep valid values. */
typedef struct {
  size_t size;          /* sizeof(gcclCodecConfig_t) as the caller compiled it */
  unsigned int magic;   /* GCCL_CODEC_CONFIG_MAGIC */
  unsigned int version; /* GCCL_VERSION_CODE as the caller compiled it */
  gcclCodec_t codec;
  int bits;                /* Quantize, Lattice: 8, 4 or 2 */
  size_t bucket;           /* Quantize, Lattice: elements per bucket, > 0 */
  gcclRounding_t rounding; /* Quantize, Lattice */
  /* Stochastic rounding and threshold sampling. The gossip calls derive each
   * message's seed from it, the rank and the step. */
  uint64_t seed;
  double latticeStep;          /* Lattice: the grid step, finite and > 0 */
  size_t topkCount;            /* TopK: entries kept; 0: use topkFraction */
  double topkFraction;         /* TopK, when topkCount is 0: in (0, 1] */
  gcclTopKSelect_t topkSelect; /* TopK */
  size_t topkSample;           /* TopK threshold: elements sampled, > 0 */
} gcclCodecConfig_t;

#define GCCL_CODEC_CONFIG_INITIALIZER                                                              \
  {                                                                                                \
    sizeof(gcclCodecConfig_t), GCCL_CODEC_CONFIG_MAGIC, GCCL_VERSION_CODE, gcclCodecNone, 8, 1024, \
        gcclRoundNearest, 0, 0.0, 0, 0.01, gcclTopKExact, 4096                                     \
  }

/* The size in bytes of the encoding of `count` elements of `datatype` (TopK:
 * its largest), so that callers can size buffers. gcclInvalidArgument, naming
 * the field, for a configuration or type the codec refuses (for example a
 * float16 tensor with gcclCodecFloat16, or TopK on anything but float32). */
GCCL_EXPORT gcclResult_t gcclCodecEncodedBytes(const gcclCodecConfig_t* config, size_t count,
                                               gcclDataType_t datatype, size_t* bytes);
/* Encodes src into out (outBytes bytes, at least gcclCodecEncodedBytes);
 * *written (may be NULL) gets the bytes written. residual: TopK only, the
 * error-feedback buffer of this tensor (count float32, zero at first): the
 * call selects from src + residual and leaves in it what was not sent, so
 * that decode(out) + residual == src + the old residual. NULL otherwise. */
GCCL_EXPORT gcclResult_t gcclCodecEncode(const gcclCodecConfig_t* config, const void* src,
                                         size_t count, gcclDataType_t datatype, void* out,
                                         size_t outBytes, size_t* written, float* residual);
/* Decodes `in` (inBytes bytes, as gcclCodecEncode wrote them) into dst.
 * reference: Lattice only, the receiver's own tensor (count elements of
 * datatype; it may be dst); NULL otherwise. */
GCCL_EXPORT gcclResult_t gcclCodecDecode(const gcclCodecConfig_t* config, const void* in,
                                         size_t inBytes, size_t count, gcclDataType_t datatype,
                                         void* dst, const void* reference);

/* ---- Sparse AllReduce --------------------------------------------------------
 * Each rank gives its tensor of `count` elements (count <= 2^32) as nnz
 * (index, value) pairs: uint32 indices ascending and distinct, each below
 * count, and nnz values of `datatype` (absent entries are zero). The result is
 * the element-wise sum (gcclSum) or average (gcclAvg) over ranks, with the same
 * bits on every rank. Ranks first share their nnz; while the ranks' pairs
 * together take fewer bytes than a dense ring AllReduce moves per rank, each
 * rank sends its pairs to every other (a sparse all-gather) and sums them in
 * rank order; otherwise each rank scatters its pairs into a dense tensor and
 * runs the dense AllReduce. Every rank makes the same choice. Blocking: the
 * exchange's sizes come from its first phase. Bad indices (out of range,
 * unsorted, repeated) are refused before anything is sent, naming the
 * position. */

/* Dense result: recvbuff holds count elements. */
GCCL_EXPORT gcclResult_t gcclSparseAllReduce(const uint32_t* indices, const void* values,
                                             size_t nnz, size_t count, gcclDataType_t datatype,
                                             gcclRedOp_t op, void* recvbuff, gcclComm_t comm,
                                             gcclStream_t stream);
/* Sparse result: the entries whose sum over ranks is not zero (+0 or -0),
 * ascending (gcclAvg: then divided by nranks), in
 * outIndices / outValues (room for `capacity` entries); *outNnz gets their
 * number. When they do not fit, every rank gets gcclInvalidArgument naming
 * the capacity needed, and *outNnz is that need. */
GCCL_EXPORT gcclResult_t gcclSparseAllReduceToSparse(const uint32_t* indices, const void* values,
                                                     size_t nnz, size_t count,
                                                     gcclDataType_t datatype, gcclRedOp_t op,
                                                     uint32_t* outIndices, void* outValues,
                                                     size_t capacity, size_t* outNnz,
                                                     gcclComm_t comm, gcclStream_t stream);
/* Gradient compression in one call: selects the top k entries of grad +
 * residual (config: a gcclCodecTopK configuration; topkCount or topkFraction
 * of count), keeps what was not selected in residual (count float32, zero at
 * first, one per tensor), and sums (gcclSum) or averages (gcclAvg) the
 * selections of all ranks into the dense recvbuff (count float32; it may be
 * grad). *sentNnz (may be NULL) gets the entries this rank sent. */
GCCL_EXPORT gcclResult_t gcclTopKAllReduce(const float* grad, float* residual, size_t count,
                                           const gcclCodecConfig_t* config, gcclRedOp_t op,
                                           float* recvbuff, size_t* sentNnz, gcclComm_t comm,
                                           gcclStream_t stream);

/* ---- Topologies (gossip) ------------------------------------------------
 * A topology tells a gossip algorithm (PushSum, neighbour averaging) who sends
 * to whom at each step, and with which weights. At step k, rank i keeps the
 * share a_ii of its value (its self weight) and sends the share a_ji to each
 * out-peer j; the weights form an nranks x nranks mixing matrix A(k). The
 * graph of step k is schedule step k mod period, so steps never run out.
 *
 * A topology is a plain object, not tied to a communicator: every rank builds
 * the same one. Calls on one topology may come from several threads at once;
 * a handle is invalid once gcclTopologyDestroy returns.
 *
 * Peer lists come in ascending rank order, name each peer once and never the
 * rank itself. The built-in kinds use integer arithmetic only and uniform
 * weights: with d distinct out-peers, a = 1/(d+1) for the rank itself and for
 * each out-peer. Offsets that coincide modulo nranks count once, and an
 * offset that is 0 modulo nranks is dropped (no self-loop), before d is
 * counted. Every built-in graph is regular, so its matrices are doubly
 * stochastic; with nranks = 1 there are no peers and the self weight is 1. */

typedef struct gcclTopology* gcclTopology_t;

typedef enum {
  /* Directed, time-varying, p = peersPerStep peers per step (1 <= p < nranks;
   * p = 1 when nranks is 1): rank i sends to i + j*(p+1)^m (mod nranks) for
   * j = 1..p, where m = step mod M and M, the period, is the smallest integer
   * with (p+1)^M >= nranks. p = 1 is the one-peer exponential graph
   * i -> i + 2^(step mod ceil(log2 nranks)); p = 2 is SGP's 2-peer graph. */
  gcclTopoExponential = 0,
  /* Directed, static: i -> i + 2^m (mod nranks) for every m with 2^m < nranks. */
  gcclTopoStaticExponential = 1,
  /* Directed, time-varying, nranks even: with d = 2^(m+1) - 1 and
   * m = step mod ceil(log2 nranks) (the period), even i -> i + d and odd
   * i -> i - d (mod nranks). Each step pairs even ranks with odd ranks. */
  gcclTopoBipartiteExponential = 2,
  /* Undirected: i - 1 and i + 1 (mod nranks). */
  gcclTopoRing = 3,
  /* Undirected: a rows x cols grid with wrap-around, rank i at row i / cols,
   * column i % cols; rows is the largest divisor of nranks that is at most
   * sqrt(nranks). Peers: the ranks above, below, left and right. */
  gcclTopoTorus2D = 4,
  /* Undirected: every other rank. */
  gcclTopoComplete = 5,
  /* Made by gcclTopologyCreateFromWeights (not accepted by gcclTopologyCreate). */
  gcclTopoUser = 6,
  gcclTopologyKindRangeMin_ = -2147483647 - 1, /* not kinds: see gcclDataType_t */
  gcclTopologyKindRangeMax_ = 2147483647
} gcclTopologyKind_t;

/* What gcclTopologyValidate checks the mixing matrices against: PushSum needs
 * column-stochastic matrices (each rank gives away exactly its value);
 * neighbour averaging (D-PSGD) needs doubly stochastic ones (each rank also
 * receives weights that sum to 1). */
typedef enum {
  gcclMixColumnStochastic = 0,
  gcclMixDoublyStochastic = 1,
  gcclMixingRangeMin_ = -2147483647 - 1, /* not mixings: see gcclDataType_t */
  gcclMixingRangeMax_ = 2147483647
} gcclMixing_t;

/* Creates a built-in topology of `kind` over `nranks` ranks (>= 1).
 * peersPerStep is p for gcclTopoExponential and must be 1 for every other
 * kind (so that a value meant for another kind is never silently ignored).
 * gcclTopoBipartiteExponential needs an even nranks. */
GCCL_EXPORT gcclResult_t gcclTopologyCreate(gcclTopology_t* topo, gcclTopologyKind_t kind,
                                            int nranks, int peersPerStep);
/* Creates a topology from nsteps mixing matrices of nranks x nranks doubles,
 * row-major: weights[(s*nranks + j)*nranks + i] = a_ji, the share of rank i's
 * value that goes to rank j at schedule step s; step k uses matrix k mod
 * nsteps (nsteps = 1: a static graph). Off-diagonal non-zeros are the edges,
 * the diagonal is the self weight. Every entry must be finite and >= 0 and
 * every column must sum to 1 within 1e-9. The weights are copied. */
GCCL_EXPORT gcclResult_t gcclTopologyCreateFromWeights(gcclTopology_t* topo, int nranks, int nsteps,
                                                       const double* weights);
/* Frees the topology. */
GCCL_EXPORT gcclResult_t gcclTopologyDestroy(gcclTopology_t topo);
/* The schedule period: step k and step k + period have the same graph
 * (1 for static graphs). */
GCCL_EXPORT gcclResult_t gcclTopologyPeriod(gcclTopology_t topo, int* nsteps);
/* The out-peers of `rank` at `step`: *npeers of them in peers[], with
 * weights[k] = a_{peers[k], rank} the share sent to peers[k], and
 * *selfWeight = a_{rank, rank}. maxPeers is the capacity of peers[] and
 * weights[] (nranks - 1 always suffices); a smaller capacity than needed is
 * an error that names the need. peers and weights may be NULL only when
 * maxPeers is 0. */
GCCL_EXPORT gcclResult_t gcclTopologyOutPeers(gcclTopology_t topo, uint64_t step, int rank,
                                              int maxPeers, int* npeers, int* peers,
                                              double* weights, double* selfWeight);
/* The in-peers of `rank` at `step`, the ranks that send to it: weights[k] =
 * a_{rank, peers[k]}, the share of peers[k]'s value that `rank` receives.
 * Exactly the transpose of the out-peers. Capacity as gcclTopologyOutPeers. */
GCCL_EXPORT gcclResult_t gcclTopologyInPeers(gcclTopology_t topo, uint64_t step, int rank,
                                             int maxPeers, int* npeers, int* peers,
                                             double* weights);
/* Checks every step of the period: no self-loops, no duplicate peers, all
 * weights finite and >= 0, every column summing to 1 and, for
 * gcclMixDoublyStochastic, every row too, within 1e-9. The error names the
 * step, the rank and the sum. A topology remembers a successful check. */
GCCL_EXPORT gcclResult_t gcclTopologyValidate(gcclTopology_t topo, gcclMixing_t mixing);

/* ---- Gossip averaging ------------------------------------------------------
 * Every rank calls these with the same step, in the same order as its other
 * collectives. The topology must have as many ranks as the communicator and
 * must outlive the call (a request keeps it alive). Floating types only;
 * half types mix in float32. */

/* One PushSum (Stochastic Gradient Push) step on `step` of `topo`, in place:
 * this rank sends x and its push-sum weight w to each out-peer j (which scales
 * them by a_ji), then x <- a_ii x + sum_j a_ij x_j and w <- a_ii w + sum_j
 * a_ij w_j over its in-peers. The weight travels as float64 whatever the
 * tensor's type; *psWeight must be positive and is updated when the step
 * completes (read it after gcclWait when a request is used). Mass is
 * conserved: the sum over ranks of x and of w stays the same, up to rounding.
 * The topology must be column-stochastic (gcclMixColumnStochastic). */
GCCL_EXPORT gcclResult_t gcclPushSum(void* x, size_t count, gcclDataType_t datatype,
                                     double* psWeight, gcclTopology_t topo, uint64_t step,
                                     gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request);
/* A rank made by gcclCommRejoin: its first collective. Receives the group's
 * current model into x from a donor (the nearest rank below it, cyclically,
 * that mixed before the join: its in-neighbour on the ring and exponential
 * graphs), sent by the donor's next gossip step (gcclPushSum,
 * gcclNeighborAverage, their Ex forms, or gcclGossipStart: the survivors call
 * nothing extra). PushSum (psWeight not NULL): the donor hands over a part c
 * of its own share, x = c x_d and *psWeight = c w_d, so x / *psWeight is
 * the donor's de-biased model and the sums of x and w over the ranks are
 * unchanged; neighbour averaging (psWeight NULL): x is the donor's model.
 * *nextStep is the step argument of the group's next gossip call (the
 * donor's step at the join plus one). Errors: gcclInvalidUsage when this rank
 * is not joining at this call, when count, datatype or the kind of gossip
 * (psWeight NULL or not) differ from the donor's step, or when that step is
 * compressed; gcclRemoteError when the donor fails first (rejoin again). */
GCCL_EXPORT gcclResult_t gcclGossipJoin(void* x, size_t count, gcclDataType_t datatype,
                                        double* psWeight, uint64_t* nextStep, gcclComm_t comm,
                                        gcclStream_t stream, gcclRequest_t* request);
/* The de-biased model z = x / psWeight (z may not overlap x unless z == x). */
GCCL_EXPORT gcclResult_t gcclPushSumDebias(const void* x, void* z, size_t count,
                                           gcclDataType_t datatype, double psWeight);
/* Neighbour averaging (D-PSGD): recvbuff <- a_ii sendbuff + sum_j a_ij
 * sendbuff_j over this rank's in-peers at `step`. The topology must be doubly
 * stochastic (gcclMixDoublyStochastic), as the undirected built-in graphs are.
 * In place when sendbuff == recvbuff. */
GCCL_EXPORT gcclResult_t gcclNeighborAverage(const void* sendbuff, void* recvbuff, size_t count,
                                             gcclDataType_t datatype, gcclTopology_t topo,
                                             uint64_t step, gcclComm_t comm, gcclStream_t stream,
                                             gcclRequest_t* request);

/* ---- Compressed gossip -------------------------------------------------------
 * The *Ex variants of the gossip calls take a gcclGossipOptions_t, a growable
 * struct like gcclConfig_t (start from GCCL_GOSSIP_OPTIONS_INITIALIZER; NULL
 * options mean the defaults, which are the plain calls). Its codec, when not
 * NULL and not gcclCodecNone, encodes every tensor message; the push-sum
 * weight still travels as float64.
 *
 * Mass is conserved with lossy codecs: a rank sends q = decode(encode(x))
 * (each out-peer gets the same encoding) and keeps exactly what it did not
 * send,
 *     x <- x - (sum_j a_ji) q + sum_j a_ij q_j,
 * so the sums over ranks of x (and of w) stay constant up to rounding, and
 * the ranks reach consensus up to the codec's error. Pairwise gossip adds
 * (q_j - q_i) / 2 on both sides. The codecs: the float16 and bfloat16 casts
 * (float32 and float64 models), quantization and the lattice. TopK is
 * refused: a model's entries of largest magnitude are the same at every step,
 * so the others would never be averaged (it is for gradients). The tensor
 * travels in slices of GCCL_CHUNK_BYTES, each encoded on its own
 * (buckets restart at each slice). Stochastic rounding draws a new seed per
 * rank, step and slice from the configured one. Lattice messages are decoded
 * against the receiver's x: a step fails, naming the bucket, when two models
 * are too far apart for the lattice's range. The codec configuration is
 * copied. */

#define GCCL_GOSSIP_OPTIONS_MAGIC 0x67636367u /* "gccg" */

typedef struct {
  size_t size;          /* sizeof(gcclGossipOptions_t) as the caller compiled it */
  unsigned int magic;   /* GCCL_GOSSIP_OPTIONS_MAGIC */
  unsigned int version; /* GCCL_VERSION_CODE as the caller compiled it */
  /* How tensor messages travel: NULL (the default) or gcclCodecNone sends
   * them as they are. */
  const gcclCodecConfig_t* codec;
} gcclGossipOptions_t;

#define GCCL_GOSSIP_OPTIONS_INITIALIZER \
  { sizeof(gcclGossipOptions_t), GCCL_GOSSIP_OPTIONS_MAGIC, GCCL_VERSION_CODE, NULL }

GCCL_EXPORT gcclResult_t gcclPushSumEx(void* x, size_t count, gcclDataType_t datatype,
                                       double* psWeight, gcclTopology_t topo, uint64_t step,
                                       const gcclGossipOptions_t* options, gcclComm_t comm,
                                       gcclStream_t stream, gcclRequest_t* request);
GCCL_EXPORT gcclResult_t gcclNeighborAverageEx(const void* sendbuff, void* recvbuff, size_t count,
                                               gcclDataType_t datatype, gcclTopology_t topo,
                                               uint64_t step, const gcclGossipOptions_t* options,
                                               gcclComm_t comm, gcclStream_t stream,
                                               gcclRequest_t* request);

/* ---- Overlap SGP -----------------------------------------------------------
 * PushSum whose messages may be folded in up to `staleness` steps late, so a
 * rank computes while its messages travel (OSGP). Per training step k:
 *   gcclGossipStart(g, k)   keeps this rank's own share of x and w at once,
 *                           sends the rest to the step's out-peers, returns;
 *   ... compute (x and w are the caller's: nothing else writes them) ...
 *   gcclGossipFinish(g, k)  folds in every message that has arrived, each with
 *                           the weight of the step it was sent at, and blocks
 *                           only until all messages of steps <= k - staleness
 *                           are in. Late messages are folded in, never dropped.
 * With staleness 0 this is synchronous PushSum. The sums over ranks of x and
 * of w are conserved once nothing is in flight; gcclGossipDestroy folds in
 * whatever is still travelling. x and *psWeight are read and written only
 * inside these calls, on the calling thread. */
typedef struct gcclGossip* gcclGossip_t;
GCCL_EXPORT gcclResult_t gcclGossipCreate(gcclGossip_t* gossip, void* x, size_t count,
                                          gcclDataType_t datatype, double* psWeight,
                                          gcclTopology_t topo, int staleness, gcclComm_t comm);
/* Overlap SGP with gcclGossipOptions_t (see Compressed gossip): Start keeps
 * x - (sum_j a_ji) q instead of a_ii x. */
GCCL_EXPORT gcclResult_t gcclGossipCreateEx(gcclGossip_t* gossip, void* x, size_t count,
                                            gcclDataType_t datatype, double* psWeight,
                                            gcclTopology_t topo, int staleness,
                                            const gcclGossipOptions_t* options, gcclComm_t comm);
GCCL_EXPORT gcclResult_t gcclGossipStart(gcclGossip_t gossip, uint64_t step);
GCCL_EXPORT gcclResult_t gcclGossipFinish(gcclGossip_t gossip, uint64_t step);
GCCL_EXPORT gcclResult_t gcclGossipDestroy(gcclGossip_t gossip);

/* ---- Pairwise gossip (SwarmSGD, AD-PSGD) ------------------------------------
 * A rank averages its model with one random neighbour of `topo` (an undirected,
 * doubly stochastic graph) while the neighbour keeps training: the
 * neighbour's progress thread serves the exchange.
 *   gcclPairwiseCreate   collective: registers x and starts serving it;
 *   gcclPairwiseExchange picks a neighbour from (seed, rank, step) — seeded and
 *                        reproducible — and averages with it; *partner gets its
 *                        rank (may be NULL), or -1 when there was none to
 *                        exchange with (fault-tolerant mode: every neighbour
 *                        failed, or the partner failed first: x is unchanged);
 *   gcclPairwiseDestroy  collective: waits until no rank can still ask (in
 *                        fault-tolerant mode, no survivor).
 * Consistency: each side adds half the difference between the two models'
 * snapshots, under its lock. If neither model changes during the exchange,
 * both end with exactly (x_i + x_j) / 2; in any case the sum of the models is
 * conserved. A trainer that updates x while exchanges may be served wraps each
 * update in gcclPairwiseLock / gcclPairwiseUnlock: a partner then sees, and
 * changes, the model only between two such sections, never inside one. */
typedef struct gcclPairwise* gcclPairwise_t;
GCCL_EXPORT gcclResult_t gcclPairwiseCreate(gcclPairwise_t* pairwise, void* x, size_t count,
                                            gcclDataType_t datatype, gcclTopology_t topo,
                                            uint64_t seed, gcclComm_t comm);
/* Pairwise gossip with gcclGossipOptions_t (see Compressed gossip): both
 * sides send encoded snapshots and add (q_j - q_i) / 2, so the sum of the
 * models is still conserved. Every rank must pass equal options. */
GCCL_EXPORT gcclResult_t gcclPairwiseCreateEx(gcclPairwise_t* pairwise, void* x, size_t count,
                                              gcclDataType_t datatype, gcclTopology_t topo,
                                              uint64_t seed, const gcclGossipOptions_t* options,
                                              gcclComm_t comm);
GCCL_EXPORT gcclResult_t gcclPairwiseExchange(gcclPairwise_t pairwise, uint64_t step, int* partner);
GCCL_EXPORT gcclResult_t gcclPairwiseLock(gcclPairwise_t pairwise);
GCCL_EXPORT gcclResult_t gcclPairwiseUnlock(gcclPairwise_t pairwise);
GCCL_EXPORT gcclResult_t gcclPairwiseDestroy(gcclPairwise_t pairwise);

/* ---- Periodic averaging (local SGD, K-AVG) ---------------------------------------
 * Ranks train on their own for `interval` steps, then average their models:
 *   gcclLocalSgdCreate  collective: binds x (count floats of datatype);
 *   gcclLocalSgdStep    after this rank's update of step `step`: when
 *                       (step + 1) % interval == 0 it averages x (every rank
 *                       must then call it with the same step) and sets
 *                       *averaged = 1, else returns at once with 0 (may be NULL);
 *   gcclLocalSgdDestroy frees it.
 * Methods: gcclAverageAllReduce makes every model the exact average (with a
 * codec in options: each rank sends its encoded model to all, and every rank
 * averages the n decodings in rank order, so all models are equal, within the
 * codec's error of the average); gcclAverageGossip does one neighbour-averaging
 * step on `topo` (doubly stochastic; with options, compressed as
 * gcclNeighborAverageEx). `topo` is ignored by gcclAverageAllReduce (may be
 * NULL); otherwise it must outlive the object. The options and their codec
 * configuration are copied. x is read and written only inside
 * gcclLocalSgdStep; a failed compressed average leaves x as it was. */
typedef struct gcclLocalSgd* gcclLocalSgd_t;
typedef enum {
  gcclAverageAllReduce = 0,
  gcclAverageGossip = 1,
  gcclAverageMethodRangeMin_ = -2147483647 - 1,
  gcclAverageMethodRangeMax_ = 2147483647
} gcclAverageMethod_t;
GCCL_EXPORT gcclResult_t gcclLocalSgdCreate(gcclLocalSgd_t* localSgd, void* x, size_t count,
                                            gcclDataType_t datatype, int interval,
                                            gcclAverageMethod_t method, gcclTopology_t topo,
                                            const gcclGossipOptions_t* options, gcclComm_t comm);
GCCL_EXPORT gcclResult_t gcclLocalSgdStep(gcclLocalSgd_t localSgd, uint64_t step, int* averaged);
GCCL_EXPORT gcclResult_t gcclLocalSgdDestroy(gcclLocalSgd_t localSgd);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GCCL_GCCL_H_ */

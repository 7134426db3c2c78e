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
 *    Every rank of a communicator must issue collectives in the same order.
 *  - Every wait has a deadline: no call blocks longer than the communicator's
 *    timeout without data moving (gcclConfig_t.timeoutMs, GCCL_TIMEOUT_MS).
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
  gcclNumTypes = 10
} gcclDataType_t;

/* Reductions. Half types (float16, bfloat16) accumulate in float32. Integer
 * sums wrap modulo 2^bits; integer averages divide with truncation toward zero. */
typedef enum {
  gcclSum = 0,
  gcclProd = 1,
  gcclMax = 2,
  gcclMin = 3,
  gcclAvg = 4,
  gcclNumOps = 5
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
   * whose peers send nothing). Default GCCL_TIMEOUT_MS. */
  int timeoutMs;
  /* TCP sockets per peer, striped for bandwidth. Default GCCL_NSOCKS_PERPEER. */
  int nSocketsPerPeer;
  /* Interface selection in NCCL's syntax ("eth", "^docker", "=eth0").
   * Default GCCL_SOCKET_IFNAME. */
  const char* socketIfname;
  /* Transport choice: "tcp" (more come with later versions). Default
   * GCCL_TRANSPORT. */
  const char* transport;
} gcclConfig_t;

#define GCCL_CONFIG_INITIALIZER                                                                    \
  {                                                                                                \
    sizeof(gcclConfig_t), GCCL_CONFIG_MAGIC, GCCL_VERSION_CODE, GCCL_CONFIG_UNDEF_INT,             \
        GCCL_CONFIG_UNDEF_INT, GCCL_CONFIG_UNDEF_INT, GCCL_CONFIG_UNDEF_PTR, GCCL_CONFIG_UNDEF_PTR \
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
 * rank has joined (or the timeout passes), so call it on a rank that lives
 * through initialization. With GCCL_COMM_ID=host:port set, the id names that
 * address instead and the rendezvous is served by rank 0 at init. */
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
 * gcclInvalidUsage as long as the memory has not been reused. */
GCCL_EXPORT gcclResult_t gcclCommDestroy(gcclComm_t comm);
/* Stops every operation of `comm` at once, from any thread: waiting calls
 * return gcclAborted; peers are told. Then frees the communicator. */
GCCL_EXPORT gcclResult_t gcclCommAbort(gcclComm_t comm);
/* gcclSuccess, gcclInProgress during non-blocking init, or the error that
 * broke the communicator (a failed peer, a timeout, an abort). */
GCCL_EXPORT gcclResult_t gcclCommGetAsyncError(gcclComm_t comm, gcclResult_t* asyncError);
GCCL_EXPORT gcclResult_t gcclCommCount(const gcclComm_t comm, int* count);
GCCL_EXPORT gcclResult_t gcclCommUserRank(const gcclComm_t comm, int* rank);

/* ---- Requests ----------------------------------------------------------- */

/* *done = 1 when the request finished; then it is released and its result
 * returned. *done = 0 while it runs (returns gcclSuccess). */
GCCL_EXPORT gcclResult_t gcclTest(gcclRequest_t request, int* done);
/* Blocks until the request finishes (or the communicator's deadline passes),
 * releases it and returns its result. */
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
 * sendbuff + rank*recvcount == recvbuff). */

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
 * depend on each other in one group. */
GCCL_EXPORT gcclResult_t gcclSend(const void* sendbuff, size_t count, gcclDataType_t datatype,
                                  int peer, gcclComm_t comm, gcclStream_t stream,
                                  gcclRequest_t* request);
GCCL_EXPORT gcclResult_t gcclRecv(void* recvbuff, size_t count, gcclDataType_t datatype, int peer,
                                  gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GCCL_GCCL_H_ */

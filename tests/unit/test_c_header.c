/*
 * The public header is plain C: this file is compiled as strict C11
 * (-std=c11 -pedantic -Wall -Wextra -Werror), uses every type, macro and
 * enumerator group of gccl/gccl.h, and assigns every API function to a pointer
 * of the exact prototype the header documents, so that a C++-only construct
 * or a changed signature fails the build. At run time it calls the functions
 * that need no communicator. Exits 0 when everything holds.
 */
#include "gccl/gccl.h"

#include <stdio.h>
#include <string.h>

/* Compile-time facts about the types. */
_Static_assert(sizeof(gcclUniqueId) == GCCL_UNIQUE_ID_BYTES, "unique id size");
_Static_assert(GCCL_VERSION_CODE == GCCL_MAJOR * 10000 + GCCL_MINOR * 100 + GCCL_PATCH,
               "version code");
_Static_assert(gcclSuccess == 0, "gcclSuccess is 0");
_Static_assert(gcclNumResults == 10, "result count");
_Static_assert(gcclNumTypes == 10 && gcclNumOps == 5, "type and op counts");
_Static_assert(gcclChar == gcclInt8 && gcclInt == gcclInt32 && gcclHalf == gcclFloat16 &&
                   gcclFloat == gcclFloat32 && gcclDouble == gcclFloat64,
               "type aliases");
_Static_assert(gcclTopoExponential == 0 && gcclTopoStaticExponential == 1 &&
                   gcclTopoBipartiteExponential == 2 && gcclTopoRing == 3 && gcclTopoTorus2D == 4 &&
                   gcclTopoComplete == 5 && gcclTopoUser == 6,
               "topology kinds");
_Static_assert(gcclMixColumnStochastic == 0 && gcclMixDoublyStochastic == 1, "mixing kinds");

/* Every API function, by its exact prototype. */
struct gcclApi {
  gcclResult_t (*getVersion)(int*);
  const char* (*getErrorString)(gcclResult_t);
  const char* (*getLastError)(gcclComm_t);
  gcclResult_t (*getUniqueId)(gcclUniqueId*);
  gcclResult_t (*commInitRank)(gcclComm_t*, int, gcclUniqueId, int);
  gcclResult_t (*commInitRankConfig)(gcclComm_t*, int, gcclUniqueId, int, gcclConfig_t*);
  gcclResult_t (*commInitFromEnv)(gcclComm_t*, gcclConfig_t*);
  gcclResult_t (*commDestroy)(gcclComm_t);
  gcclResult_t (*commAbort)(gcclComm_t);
  gcclResult_t (*commGetAsyncError)(gcclComm_t, gcclResult_t*);
  gcclResult_t (*commCount)(const gcclComm_t, int*);
  gcclResult_t (*commUserRank)(const gcclComm_t, int*);
  gcclResult_t (*commGetPeerCounters)(gcclComm_t, int, gcclPeerCounters_t*);
  gcclResult_t (*commGetFailedRanks)(gcclComm_t, gcclFailedRank_t*, int, int*);
  gcclResult_t (*commShrink)(gcclComm_t, gcclConfig_t*, gcclComm_t*);
  gcclResult_t (*test)(gcclRequest_t, int*);
  gcclResult_t (*wait)(gcclRequest_t);
  gcclResult_t (*groupStart)(void);
  gcclResult_t (*groupEnd)(void);
  gcclResult_t (*allReduce)(const void*, void*, size_t, gcclDataType_t, gcclRedOp_t, gcclComm_t,
                            gcclStream_t, gcclRequest_t*);
  gcclResult_t (*broadcast)(const void*, void*, size_t, gcclDataType_t, int, gcclComm_t,
                            gcclStream_t, gcclRequest_t*);
  gcclResult_t (*reduce)(const void*, void*, size_t, gcclDataType_t, gcclRedOp_t, int, gcclComm_t,
                         gcclStream_t, gcclRequest_t*);
  gcclResult_t (*allGather)(const void*, void*, size_t, gcclDataType_t, gcclComm_t, gcclStream_t,
                            gcclRequest_t*);
  gcclResult_t (*reduceScatter)(const void*, void*, size_t, gcclDataType_t, gcclRedOp_t, gcclComm_t,
                                gcclStream_t, gcclRequest_t*);
  gcclResult_t (*barrier)(gcclComm_t, gcclStream_t, gcclRequest_t*);
  gcclResult_t (*send)(const void*, size_t, gcclDataType_t, int, gcclComm_t, gcclStream_t,
                       gcclRequest_t*);
  gcclResult_t (*recv)(void*, size_t, gcclDataType_t, int, gcclComm_t, gcclStream_t,
                       gcclRequest_t*);
  gcclResult_t (*topologyCreate)(gcclTopology_t*, gcclTopologyKind_t, int, int);
  gcclResult_t (*topologyCreateFromWeights)(gcclTopology_t*, int, int, const double*);
  gcclResult_t (*topologyDestroy)(gcclTopology_t);
  gcclResult_t (*topologyPeriod)(gcclTopology_t, int*);
  gcclResult_t (*topologyOutPeers)(gcclTopology_t, uint64_t, int, int, int*, int*, double*,
                                   double*);
  gcclResult_t (*topologyInPeers)(gcclTopology_t, uint64_t, int, int, int*, int*, double*);
  gcclResult_t (*topologyValidate)(gcclTopology_t, gcclMixing_t);
  gcclResult_t (*pushSum)(void*, size_t, gcclDataType_t, double*, gcclTopology_t, uint64_t,
                          gcclComm_t, gcclStream_t, gcclRequest_t*);
  gcclResult_t (*pushSumDebias)(const void*, void*, size_t, gcclDataType_t, double);
  gcclResult_t (*neighborAverage)(const void*, void*, size_t, gcclDataType_t, gcclTopology_t,
                                  uint64_t, gcclComm_t, gcclStream_t, gcclRequest_t*);
  gcclResult_t (*gossipCreate)(gcclGossip_t*, void*, size_t, gcclDataType_t, double*,
                               gcclTopology_t, int, gcclComm_t);
  gcclResult_t (*gossipStart)(gcclGossip_t, uint64_t);
  gcclResult_t (*gossipFinish)(gcclGossip_t, uint64_t);
  gcclResult_t (*gossipDestroy)(gcclGossip_t);
  gcclResult_t (*pairwiseCreate)(gcclPairwise_t*, void*, size_t, gcclDataType_t, gcclTopology_t,
                                 uint64_t, gcclComm_t);
  gcclResult_t (*pairwiseExchange)(gcclPairwise_t, uint64_t, int*);
  gcclResult_t (*pairwiseLock)(gcclPairwise_t);
  gcclResult_t (*pairwiseUnlock)(gcclPairwise_t);
  gcclResult_t (*pairwiseDestroy)(gcclPairwise_t);
};

static const struct gcclApi api = {
    .getVersion = gcclGetVersion,
    .getErrorString = gcclGetErrorString,
    .getLastError = gcclGetLastError,
    .getUniqueId = gcclGetUniqueId,
    .commInitRank = gcclCommInitRank,
    .commInitRankConfig = gcclCommInitRankConfig,
    .commInitFromEnv = gcclCommInitFromEnv,
    .commDestroy = gcclCommDestroy,
    .commAbort = gcclCommAbort,
    .commGetAsyncError = gcclCommGetAsyncError,
    .commCount = gcclCommCount,
    .commUserRank = gcclCommUserRank,
    .commGetPeerCounters = gcclCommGetPeerCounters,
    .commGetFailedRanks = gcclCommGetFailedRanks,
    .commShrink = gcclCommShrink,
    .test = gcclTest,
    .wait = gcclWait,
    .groupStart = gcclGroupStart,
    .groupEnd = gcclGroupEnd,
    .allReduce = gcclAllReduce,
    .broadcast = gcclBroadcast,
    .reduce = gcclReduce,
    .allGather = gcclAllGather,
    .reduceScatter = gcclReduceScatter,
    .barrier = gcclBarrier,
    .send = gcclSend,
    .recv = gcclRecv,
    .topologyCreate = gcclTopologyCreate,
    .topologyCreateFromWeights = gcclTopologyCreateFromWeights,
    .topologyDestroy = gcclTopologyDestroy,
    .topologyPeriod = gcclTopologyPeriod,
    .topologyOutPeers = gcclTopologyOutPeers,
    .topologyInPeers = gcclTopologyInPeers,
    .topologyValidate = gcclTopologyValidate,
    .pushSum = gcclPushSum,
    .pushSumDebias = gcclPushSumDebias,
    .neighborAverage = gcclNeighborAverage,
    .gossipCreate = gcclGossipCreate,
    .gossipStart = gcclGossipStart,
    .gossipFinish = gcclGossipFinish,
    .gossipDestroy = gcclGossipDestroy,
    .pairwiseCreate = gcclPairwiseCreate,
    .pairwiseExchange = gcclPairwiseExchange,
    .pairwiseLock = gcclPairwiseLock,
    .pairwiseUnlock = gcclPairwiseUnlock,
    .pairwiseDestroy = gcclPairwiseDestroy,
};

static int failures = 0;

static void check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

int main(void) {
  /* Types and initializers. */
  gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
  gcclUniqueId id;
  gcclComm_t comm = NULL;
  gcclRequest_t request = NULL;
  gcclStream_t stream = NULL;
  gcclDataType_t type = gcclBfloat16;
  gcclRedOp_t op = gcclAvg;
  gcclResult_t result = gcclInProgress;
  memset(&id, 0, sizeof(id));

  check(cfg.size == sizeof(gcclConfig_t), "GCCL_CONFIG_INITIALIZER sets size");
  check(cfg.magic == GCCL_CONFIG_MAGIC, "GCCL_CONFIG_INITIALIZER sets magic");
  check(cfg.version == GCCL_VERSION_CODE, "GCCL_CONFIG_INITIALIZER sets version");
  check(cfg.blocking == GCCL_CONFIG_UNDEF_INT && cfg.timeoutMs == GCCL_CONFIG_UNDEF_INT &&
            cfg.nSocketsPerPeer == GCCL_CONFIG_UNDEF_INT &&
            cfg.faultTolerant == GCCL_CONFIG_UNDEF_INT,
        "GCCL_CONFIG_INITIALIZER leaves int fields undefined");
  check(cfg.socketIfname == GCCL_CONFIG_UNDEF_PTR && cfg.transport == GCCL_CONFIG_UNDEF_PTR,
        "GCCL_CONFIG_INITIALIZER leaves string fields undefined");
  check(sizeof(id.internal) == GCCL_UNIQUE_ID_BYTES && id.internal[0] == 0, "gcclUniqueId");
  check(comm == NULL && request == NULL && stream == NULL, "handles are pointers");
  check(type == gcclBfloat16 && op == gcclAvg && result == gcclInProgress, "enums");

  /* Every pointer was bound. */
  check(api.getVersion && api.getErrorString && api.getLastError && api.getUniqueId &&
            api.commInitRank && api.commInitRankConfig && api.commInitFromEnv && api.commDestroy &&
            api.commAbort && api.commGetAsyncError && api.commCount && api.commUserRank &&
            api.commGetPeerCounters && api.commGetFailedRanks && api.commShrink && api.test &&
            api.wait && api.groupStart && api.groupEnd && api.allReduce && api.broadcast &&
            api.reduce && api.allGather && api.reduceScatter && api.barrier && api.send &&
            api.recv && api.topologyCreate && api.topologyCreateFromWeights &&
            api.topologyDestroy && api.topologyPeriod && api.topologyOutPeers &&
            api.topologyInPeers && api.topologyValidate,
        "every API function has an address");

  /* The calls that need no communicator. */
  {
    int version = -1;
    int r;
    check(api.getVersion(&version) == gcclSuccess, "gcclGetVersion succeeds");
    check(version == GCCL_VERSION_CODE, "gcclGetVersion returns GCCL_VERSION_CODE");
    for (r = gcclSuccess; r <= gcclNumResults; ++r) {
      const char* s = api.getErrorString((gcclResult_t)r);
      check(s != NULL && s[0] != '\0', "gcclGetErrorString names every result");
    }
    check(api.getLastError(NULL) != NULL, "gcclGetLastError(NULL) is never NULL");
  }

  /* Topologies need no communicator either. */
  {
    gcclTopology_t topo = NULL;
    gcclTopologyKind_t kind = gcclTopoRing;
    gcclMixing_t mixing = gcclMixDoublyStochastic;
    const double swap[4] = {0.5, 0.5, 0.5, 0.5};
    int period = 0, npeers = -1, peers[3];
    double weights[3], self = 0;
    check(api.topologyCreate(&topo, kind, 4, 1) == gcclSuccess, "gcclTopologyCreate succeeds");
    check(api.topologyPeriod(topo, &period) == gcclSuccess && period == 1, "gcclTopologyPeriod");
    check(api.topologyOutPeers(topo, 0, 0, 3, &npeers, peers, weights, &self) == gcclSuccess &&
              npeers == 2 && peers[0] == 1 && peers[1] == 3 && self == 1.0 / 3,
          "gcclTopologyOutPeers");
    check(api.topologyInPeers(topo, 0, 0, 3, &npeers, peers, weights) == gcclSuccess &&
              npeers == 2 && weights[0] == 1.0 / 3,
          "gcclTopologyInPeers");
    check(api.topologyValidate(topo, mixing) == gcclSuccess, "gcclTopologyValidate");
    check(api.topologyDestroy(topo) == gcclSuccess, "gcclTopologyDestroy");
    check(api.topologyCreateFromWeights(&topo, 2, 1, swap) == gcclSuccess &&
              api.topologyDestroy(topo) == gcclSuccess,
          "gcclTopologyCreateFromWeights");
    check(api.topologyCreate(&topo, gcclTopoUser, 4, 1) == gcclInvalidArgument,
          "gcclTopologyCreate rejects gcclTopoUser");
  }

  {
    gcclPeerCounters_t counters = GCCL_PEER_COUNTERS_INITIALIZER;
    check(counters.size == sizeof(gcclPeerCounters_t) &&
              counters.magic == GCCL_PEER_COUNTERS_MAGIC && counters.version == GCCL_VERSION_CODE,
          "GCCL_PEER_COUNTERS_INITIALIZER sets size, magic and version");
    check(counters.bytesSent == 0 && counters.bytesReceived == 0 && counters.messagesSent == 0 &&
              counters.messagesReceived == 0,
          "GCCL_PEER_COUNTERS_INITIALIZER zeroes the counters");
    counters.bytesSent = 77;
    check(api.commGetPeerCounters(NULL, 0, &counters) == gcclInvalidArgument &&
              strstr(api.getLastError(NULL), "comm is NULL") != NULL && counters.bytesSent == 77,
          "gcclCommGetPeerCounters refuses a NULL comm and writes nothing");
  }

  if (failures != 0) return 1;
  printf("gccl/gccl.h compiles and links as C11\n");
  return 0;
}

// One rank of a real NCCL job whose traffic goes through libnccl-net-gccl.so
// (run_nccl_job.sh starts two, each with its own NCCL_HOSTID so that NCCL
// takes them for two hosts and routes every byte through the net plugin).
// ncclAllReduce(sum) on device buffers of several sizes; every element is
// checked. Exits 77 (skipped) when no CUDA device is present.
//
//   nccl_allreduce_job <rank> <nranks> <file for the unique id>
#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kSkip = 77;

#define JOB_CHECK(cond, ...)               \
  do {                                     \
    if (!(cond)) {                         \
      fprintf(stderr, "rank %d: ", gRank); \
      fprintf(stderr, __VA_ARGS__);        \
      fprintf(stderr, "\n");               \
      return 1;                            \
    }                                      \
  } while (0)
#define CUDA_OK(call)                                                      \
  do {                                                                     \
    cudaError_t e_ = (call);                                               \
    JOB_CHECK(e_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(e_)); \
  } while (0)
#define NCCL_OK(call)                                                      \
  do {                                                                     \
    ncclResult_t r_ = (call);                                              \
    JOB_CHECK(r_ == ncclSuccess, "%s: %s", #call, ncclGetErrorString(r_)); \
  } while (0)

int gRank = -1;

// Rank 0 writes the id to `path` (then renames it into place); the others
// wait for it, at most 60 s.
int shareId(const std::string& path, int rank, ncclUniqueId* id) {
  if (rank == 0) {
    NCCL_OK(ncclGetUniqueId(id));
    std::string tmp = path + ".tmp";
    FILE* f = fopen(tmp.c_str(), "wb");
    JOB_CHECK(f != nullptr && fwrite(id, sizeof(*id), 1, f) == 1, "writing %s", tmp.c_str());
    fclose(f);
    JOB_CHECK(rename(tmp.c_str(), path.c_str()) == 0, "renaming to %s", path.c_str());
    return 0;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    FILE* f = fopen(path.c_str(), "rb");
    if (f != nullptr) {
      bool ok = fread(id, sizeof(*id), 1, f) == 1;
      fclose(f);
      if (ok) return 0;
    }
    JOB_CHECK(std::chrono::steady_clock::now() < deadline, "no unique id in %s after 60 s",
              path.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <rank> <nranks> <id file>\n", argv[0]);
    return 2;
  }
  gRank = atoi(argv[1]);
  int nranks = atoi(argv[2]);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    printf("SKIP: no CUDA device here (NCCL cannot run without a GPU)\n");
    return kSkip;
  }
  ncclUniqueId id;
  if (shareId(argv[3], gRank, &id) != 0) return 1;
  CUDA_OK(cudaSetDevice(0));  // one GPU may serve both ranks: NCCL_HOSTID differs
  ncclComm_t comm;
  NCCL_OK(ncclCommInitRank(&comm, nranks, id, gRank));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  const size_t counts[] = {1, 1000, 250000, 4u << 20, 16u << 20};  // floats, up to 64 MiB
  double bytes = 0;
  for (size_t count : counts) {
    std::vector<float> host(count);
    for (size_t i = 0; i < count; ++i)
      host[i] = static_cast<float>((gRank + 1) * ((i % 13) + 1));
    float* dev = nullptr;
    CUDA_OK(cudaMalloc(&dev, count * sizeof(float)));
    CUDA_OK(cudaMemcpy(dev, host.data(), count * sizeof(float), cudaMemcpyHostToDevice));
    auto t0 = std::chrono::steady_clock::now();
    NCCL_OK(ncclAllReduce(dev, dev, count, ncclFloat, ncclSum, comm, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    CUDA_OK(cudaMemcpy(host.data(), dev, count * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_OK(cudaFree(dev));
    float rankSum = static_cast<float>(nranks * (nranks + 1) / 2);
    for (size_t i = 0; i < count; ++i)
      JOB_CHECK(host[i] == rankSum * static_cast<float>((i % 13) + 1),
                "count %zu: element %zu is %g, expected %g", count, i, host[i],
                rankSum * static_cast<float>((i % 13) + 1));
    bytes += static_cast<double>(count * sizeof(float));
    printf("rank %d: allreduce of %zu floats correct (%.0f us)\n", gRank, count, us);
  }
  NCCL_OK(ncclCommDestroy(comm));
  CUDA_OK(cudaStreamDestroy(stream));
  printf("rank %d: OK (%.0f bytes reduced)\n", gRank, bytes);
  return 0;
}

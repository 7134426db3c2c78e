// mpi_allreduce_bench: MPI_Allreduce (float32 sum, out of place) measured the
// way all_reduce_perf measures gcclAllReduce, for perf/compare.
//
//   mpirun -np N mpi_allreduce_bench -b 8 -e 64M -f 4 -w 5 -n 20
//
// The algorithm is whatever the MPI library picks (Open MPI: coll/tuned's
// decision rules, libnbc's for MPI_Iallreduce); perf/compare runs it over TCP
// on loopback and over shared memory. Calls block one after another (-z 2,
// the default); -z 0 starts each with MPI_Iallreduce and waits for them all
// with MPI_Waitall after the timed loop.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "peer_bench.h"

namespace {

void checkMpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char why[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, why, &len);
  fprintf(stderr, "mpi_allreduce_bench: %s failed: %s\n", what, why);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

class MpiBackend : public peers::Backend {
 public:
  MpiBackend() {
    checkMpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    checkMpi(MPI_Comm_size(MPI_COMM_WORLD, &nranks_), "MPI_Comm_size");
  }
  int rank() const override { return rank_; }
  int nranks() const override { return nranks_; }
  void allreduce(const float* send, float* recv, size_t count) override {
    checkMpi(MPI_Allreduce(send, recv, static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
             "MPI_Allreduce");
  }
  // Every call in flight writes the same receive buffer, which MPI leaves
  // undefined until they are all done: only the timed loop does this, and the
  // checked call that follows it is a blocking one.
  void start(const float* send, float* recv, size_t count) override {
    MPI_Request& r = requests_.emplace_back();
    checkMpi(
        MPI_Iallreduce(send, recv, static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r),
        "MPI_Iallreduce");
  }
  void waitAll() override {
    checkMpi(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE),
             "MPI_Waitall");
    requests_.clear();
  }
  std::string noNonBlocking() const override { return ""; }
  void barrier() override { checkMpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  void combine(double* values, size_t n, peers::Combine op) override {
    MPI_Op mop = op == peers::Combine::kSum   ? MPI_SUM
                 : op == peers::Combine::kMin ? MPI_MIN
                                              : MPI_MAX;
    checkMpi(
        MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(n), MPI_DOUBLE, mop, MPI_COMM_WORLD),
        "MPI_Allreduce (bookkeeping)");
  }
  std::vector<std::string> describe(const peers::Options& opt) const override {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    std::string s(lib, static_cast<size_t>(len));
    // The version string may span several lines; the first names the library.
    s = s.substr(0, s.find('\n'));
    const char* call =
        opt.blocking == gperf::Blocking::kNo
            ? "MPI_Iallreduce (MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) per call, MPI_Waitall after "
              "the timed loop, out of place"
            : "MPI_Allreduce (MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), blocking, out of place";
    return {call, "library: " + s};
  }

 private:
  int rank_ = 0;
  int nranks_ = 1;
  std::vector<MPI_Request> requests_;
};

}  // namespace

int main(int argc, char** argv) {
  checkMpi(MPI_Init(&argc, &argv), "MPI_Init");
  MpiBackend b;
  peers::Options opt;
  int status = peers::parseOptions(argc, argv, b.rank() == 0, &opt);
  if (status < 0) {
    // MPI_Allreduce takes an int count.
    if (opt.maxBytes / sizeof(float) > static_cast<size_t>(2147483647)) {
      if (b.rank() == 0) fprintf(stderr, "mpi_allreduce_bench: -e is too large for an int count\n");
      status = 2;
    } else {
      status = peers::run("mpi_allreduce_bench", opt, b);
    }
  }
  MPI_Finalize();
  return status;
}

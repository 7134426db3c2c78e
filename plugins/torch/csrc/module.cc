// The Python module gccl._C: the backend class and its factory, topology handles and the
// library version. Loading it also registers the custom ops (ops.cc).
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <chrono>
#include <mutex>
#include <vector>

#include "communicator.h"
#include "gccl/gccl.h"
#include "ops.h"
#include "process_group.h"

namespace py = pybind11;

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using namespace gccl_torch;
  m.doc() = "gccl: the torch.distributed backend and gossip ops (native part)";

  py::class_<ProcessGroupGccl, c10d::Backend, c10::intrusive_ptr<ProcessGroupGccl>>(
      m, "ProcessGroupGccl")
      .def_property_readonly("comm_id", &ProcessGroupGccl::commId,
                             "The id the gossip ops take to name this communicator.")
      .def("peer_counters", &ProcessGroupGccl::peerCounters, py::arg("peer"),
           "Traffic with `peer` since the group was made: [bytes sent, bytes received, "
           "messages sent, messages received].")
      .def("abort_communicator", &ProcessGroupGccl::abortCommunicator,
           py::call_guard<py::gil_scoped_release>(),
           "Stops every operation of the communicator at once (waiting calls fail).");

  m.def("create_backend", &createProcessGroupGccl, py::arg("store"), py::arg("rank"),
        py::arg("size"), py::arg("timeout_seconds"), py::call_guard<py::gil_scoped_release>(),
        "Makes the gccl backend of `rank` from torch's store (collective over `size` ranks).");

  m.def("topology_create", &topologyCreate, py::arg("kind"), py::arg("nranks"),
        py::arg("peers_per_step"));
  m.def("topology_from_weights", &topologyFromWeights, py::arg("nranks"), py::arg("nsteps"),
        py::arg("weights"));
  m.def("topology_destroy", &topologyDestroy, py::arg("topology"));
  m.def("topology_period", &topologyPeriod, py::arg("topology"));
  m.def("topology_out_peers", &topologyOutPeers, py::arg("topology"), py::arg("step"),
        py::arg("rank"));
  m.def(
      "direct_all_reduce_seconds",
      [](int64_t commId, int64_t count, int64_t iters) {
        // The baseline of the backend's per-call overhead: blocking gcclAllReduce calls on a
        // float32 buffer, straight from C++, on the communicator behind a gccl process group.
        auto comm = gccl_torch::lookupCommunicator(commId);
        std::vector<float> buf(static_cast<size_t>(count), 1.0f);
        std::lock_guard<std::mutex> lock(comm->issueMutex());
        auto start = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < iters; ++i) {
          gccl_torch::check(gcclAllReduce(buf.data(), buf.data(), buf.size(), gcclFloat32, gcclSum,
                                          comm->get(), nullptr, nullptr),
                            "all_reduce", comm->get());
        }
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      },
      py::arg("comm_id"), py::arg("count"), py::arg("iters"),
      py::call_guard<py::gil_scoped_release>());
  m.def("version", [] {
    int version = 0;
    gcclGetVersion(&version);
    return version;
  });
}

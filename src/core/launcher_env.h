// What the process launcher (mpirun, a PMI launcher, srun, torchrun) tells a
// rank about its place in the job, read from the environment.
#pragma once

#include <functional>
#include <string>

#include "gccl/gccl.h"

namespace gccl {

struct LauncherEnv {
  std::string launcher;  // "ompi", "pmi", "slurm", "torchrun"
  int rank = -1, size = -1;
  int localRank = -1, localSize = -1;  // -1 when the launcher does not say
  // Identical on every rank of one job step, different between steps, so that
  // a file rendezvous can be keyed by it; "" when the launcher gives none.
  std::string jobId;
  std::string masterAddr;  // MASTER_ADDR if set
  int masterPort = -1;     // MASTER_PORT if set
};

// Launchers are tried in this order, the first whose rank variable is set wins:
//   ompi     OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE; job id from
//            OMPI_MCA_ess_base_jobid, PMIX_NAMESPACE or OMPI_MCA_orte_ess_jobid
//   pmi      PMI_RANK/PMI_SIZE (local from MPI_LOCALRANKID/MPI_LOCALNRANKS, as
//            MPICH's Hydra sets them); job id PMI_JOBID
//   slurm    SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID; local size from
//            SLURM_NTASKS_PER_NODE when a plain integer, else the first number
//            of SLURM_TASKS_PER_NODE ("4(x2),3" -> 4); job id
//            SLURM_JOB_ID.SLURM_STEP_ID
//   torchrun RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE; job id TORCHELASTIC_RUN_ID
// MASTER_ADDR/MASTER_PORT are read whichever launcher is found.
// Errors name the variable and its value: gcclInvalidUsage when no launcher is
// found, gcclInvalidArgument for non-integers, size < 1, rank outside
// [0, size), a local rank outside [0, local size), MASTER_PORT outside 1..65535.
// Empty variables count as unset. *out is written only on success.
gcclResult_t readLauncherEnv(const std::function<const char*(const char*)>& getenvFn,
                             LauncherEnv* out);
gcclResult_t readLauncherEnv(LauncherEnv* out);  // uses ::getenv

}  // namespace gccl

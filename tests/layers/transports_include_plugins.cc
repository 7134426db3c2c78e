// Must not compile: transports/ sits below plugins/ (the NCCL net plugin).
#include "plugins/nccl-net/net_comm.h"

int layerTransportsIncludesPlugins() {
  return 0;
}

// libgccl.so is the internal library linked whole; this unit only gives the
// shared library a source of its own. Public symbols carry GCCL_EXPORT.
#include "gccl/gccl.h"

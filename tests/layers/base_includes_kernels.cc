// Must not compile: the base layer reaching up into the kernels.
#include "base/check.h"
#include "kernels/cpu/reduce.h"

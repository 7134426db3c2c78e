// Must not compile: the kernels reaching into the transports (a layer beside them).
#include "base/check.h"
#include "transports/transport.h"

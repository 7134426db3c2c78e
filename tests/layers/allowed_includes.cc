// Compiles: every layer sees itself and the layers below it.
#include "base/check.h"
#include "base/clock.h"
#include "transports/transport.h"

// Must not compile: a transport reaching up into the engine.
#include "base/check.h"
#include "core/engine.h"

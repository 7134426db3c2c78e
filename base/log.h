// Logging in the style users know from NCCL: GCCL_DEBUG sets the level,
// GCCL_DEBUG_SUBSYS the subsystems, GCCL_DEBUG_FILE the destination.
#pragma once

#include <cstdint>

namespace gccl {

enum LogLevel : int { kLogNone = 0, kLogVersion = 1, kLogWarn = 2, kLogInfo = 3, kLogTrace = 4 };

enum LogSubsys : uint32_t {
  kLogInit = 1u << 0,
  kLogBootstrap = 1u << 1,
  kLogNet = 1u << 2,
  kLogColl = 1u << 3,
  kLogEnv = 1u << 4,
  kLogAll = ~0u,
};

// True when a message of this level and subsystem would be written.
bool logEnabled(LogLevel level, uint32_t subsys);
void logMessage(LogLevel level, uint32_t subsys, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 5, 6)));

// A destination that replaces GCCL_DEBUG_FILE/stderr for a library loaded
// by another one (the NCCL net plugin hands every line to NCCL's logger,
// which applies NCCL_DEBUG itself): messages up to `maxLevel` are formatted
// and passed to `sink`, from any thread. A null sink restores the default.
using LogSink = void (*)(LogLevel level, uint32_t subsys, const char* file, int line,
                         const char* msg);
void setLogSink(LogSink sink, LogLevel maxLevel);

}  // namespace gccl

#define GCCL_LOG_AT(level, subsys, ...)                                       \
  do {                                                                        \
    if (::gccl::logEnabled((level), (subsys)))                                \
      ::gccl::logMessage((level), (subsys), __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#define GCCL_WARN(subsys, ...) GCCL_LOG_AT(::gccl::kLogWarn, (subsys), __VA_ARGS__)
#define GCCL_INFO(subsys, ...) GCCL_LOG_AT(::gccl::kLogInfo, (subsys), __VA_ARGS__)
#define GCCL_TRACE(subsys, ...) GCCL_LOG_AT(::gccl::kLogTrace, (subsys), __VA_ARGS__)

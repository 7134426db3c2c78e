#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

#include "base/param.h"

namespace gccl {

namespace {

struct LogState {
  int level = kLogWarn;
  uint32_t subsys = kLogAll;
  FILE* out = stderr;
  char host[64] = "";
  std::mutex mutex;
};

uint32_t subsysBit(const std::string& name) {
  static const struct {
    const char* name;
    uint32_t bit;
  } kNames[] = {{"INIT", kLogInit}, {"BOOTSTRAP", kLogBootstrap},
                {"NET", kLogNet},   {"COLL", kLogColl},
                {"ENV", kLogEnv},   {"ALL", kLogAll}};
  for (const auto& n : kNames)
    if (strcasecmp(n.name, name.c_str()) == 0) return n.bit;
  return 0;
}

std::atomic<LogSink> gSink{nullptr};
std::atomic<int> gSinkLevel{kLogNone};

LogState& state() {
  static LogState* s = [] {
    auto* st = new LogState();  // never freed: logging must work during static destruction
    std::string level = param::Debug();
    if (strcasecmp(level.c_str(), "NONE") == 0)
      st->level = kLogNone;
    else if (strcasecmp(level.c_str(), "VERSION") == 0)
      st->level = kLogVersion;
    else if (strcasecmp(level.c_str(), "INFO") == 0)
      st->level = kLogInfo;
    else if (strcasecmp(level.c_str(), "TRACE") == 0)
      st->level = kLogTrace;
    else
      st->level = kLogWarn;

    std::string subsys = param::DebugSubsys();
    bool invert = !subsys.empty() && subsys[0] == '^';
    if (invert) subsys.erase(0, 1);
    uint32_t mask = 0;
    size_t pos = 0;
    while (pos <= subsys.size()) {
      size_t comma = subsys.find(',', pos);
      if (comma == std::string::npos) comma = subsys.size();
      mask |= subsysBit(subsys.substr(pos, comma - pos));
      pos = comma + 1;
    }
    st->subsys = invert ? ~mask : mask;

    gethostname(st->host, sizeof(st->host) - 1);
    std::string file = param::DebugFile();
    if (!file.empty()) {
      std::string path;
      for (size_t i = 0; i < file.size(); ++i) {
        if (file[i] == '%' && i + 1 < file.size() && file[i + 1] == 'h') {
          path += st->host;
          ++i;
        } else if (file[i] == '%' && i + 1 < file.size() && file[i + 1] == 'p') {
          path += std::to_string(getpid());
          ++i;
        } else {
          path += file[i];
        }
      }
      FILE* f = fopen(path.c_str(), "a");
      if (f != nullptr) {
        setvbuf(f, nullptr, _IOLBF, 0);
        st->out = f;
      } else {
        fprintf(stderr, "gccl: cannot open GCCL_DEBUG_FILE %s: %s; logging to stderr\n",
                path.c_str(), strerror(errno));
      }
    }
    return st;
  }();
  return *s;
}

}  // namespace

void setLogSink(LogSink sink, LogLevel maxLevel) {
  gSinkLevel.store(maxLevel, std::memory_order_relaxed);
  gSink.store(sink, std::memory_order_release);
}

bool logEnabled(LogLevel level, uint32_t subsys) {
  if (gSink.load(std::memory_order_acquire) != nullptr)
    return level <= gSinkLevel.load(std::memory_order_relaxed);
  LogState& s = state();
  return level <= s.level && (subsys & s.subsys) != 0;
}

void logMessage(LogLevel level, uint32_t subsys, const char* file, int line, const char* fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (LogSink sink = gSink.load(std::memory_order_acquire)) {
    sink(level, subsys, file, line, msg);
    return;
  }
  LogState& s = state();
  const char* base = strrchr(file, '/');
  base = base ? base + 1 : file;
  static const char* kNames[] = {"NONE", "VERSION", "WARN", "INFO", "TRACE"};
  std::lock_guard<std::mutex> lock(s.mutex);
  if (level >= kLogTrace)
    fprintf(s.out, "%s:%d:%d [gccl] %s %s:%d %s\n", s.host, getpid(), gettid(), kNames[level], base,
            line, msg);
  else
    fprintf(s.out, "%s:%d:%d [gccl] %s %s\n", s.host, getpid(), gettid(), kNames[level], msg);
  fflush(s.out);
}

}  // namespace gccl

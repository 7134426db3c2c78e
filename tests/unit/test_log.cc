// Logging: GCCL_DEBUG picks the level, GCCL_DEBUG_SUBSYS the subsystems and
// GCCL_DEBUG_FILE the destination (%h host, %p pid). The settings are read
// once per process, so each case runs in a fresh child.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "base/log.h"

namespace gccl {
namespace {

// Runs `body` in a child with the given environment; returns what it logged to the file.
std::string logInChild(const char* level, const char* subsys, void (*body)()) {
  std::string path = "/tmp/gccl-log-test-" + std::to_string(getpid()) + "-%p.log";
  pid_t pid = fork();
  if (pid == 0) {
    setenv("GCCL_DEBUG", level, 1);
    setenv("GCCL_DEBUG_SUBSYS", subsys, 1);
    setenv("GCCL_DEBUG_FILE", path.c_str(), 1);
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::string real = path.substr(0, path.find("%p")) + std::to_string(pid) + ".log";
  std::ifstream in(real);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(real.c_str());
  return ss.str();
}

void logOneOfEach() {
  GCCL_WARN(kLogNet, "warn-net");
  GCCL_INFO(kLogInit, "info-init");
  GCCL_INFO(kLogColl, "info-coll");
  GCCL_TRACE(kLogNet, "trace-net");
}

TEST(Log, WarnLevelWritesWarningsOnly) {
  std::string out = logInChild("WARN", "ALL", logOneOfEach);
  EXPECT_NE(out.find("warn-net"), std::string::npos) << out;
  EXPECT_EQ(out.find("info-init"), std::string::npos) << out;
}

TEST(Log, InfoLevelWithASubsystemListKeepsOnlyThoseSubsystems) {
  std::string out = logInChild("INFO", "INIT,NET", logOneOfEach);
  EXPECT_NE(out.find("info-init"), std::string::npos) << out;
  EXPECT_NE(out.find("warn-net"), std::string::npos) << out;
  EXPECT_EQ(out.find("info-coll"), std::string::npos) << out;
  EXPECT_EQ(out.find("trace-net"), std::string::npos) << out;
}

TEST(Log, ACaretExcludesTheListedSubsystems) {
  std::string out = logInChild("TRACE", "^NET", logOneOfEach);
  EXPECT_NE(out.find("info-init"), std::string::npos) << out;
  EXPECT_NE(out.find("info-coll"), std::string::npos) << out;
  EXPECT_EQ(out.find("warn-net"), std::string::npos) << out;
  EXPECT_EQ(out.find("trace-net"), std::string::npos) << out;
}

TEST(Log, LinesNameTheHostPidAndLevel) {
  std::string out = logInChild("INFO", "ALL", logOneOfEach);
  char host[64] = "";
  gethostname(host, sizeof(host) - 1);
  EXPECT_NE(out.find(std::string(host) + ":"), std::string::npos) << out;
  EXPECT_NE(out.find("[gccl] INFO info-init"), std::string::npos) << out;
}

}  // namespace
}  // namespace gccl

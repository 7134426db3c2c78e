// GCCL_* parameters (core/param.h): docs/PARAMETERS.md documents exactly the
// parameters of params.def with their defaults; values come from the
// environment, else from the file named by GCCL_CONF_FILE; malformed integers
// fall back to the default.
//
// The conf file is read once per process, at the first lookup. Its tests run
// their checks as threadsafe death tests: gtest re-executes this binary for
// just that test, so the child's first lookup happens after it has set
// GCCL_CONF_FILE, whatever ran before in the parent.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/param.h"

#ifndef GCCL_SOURCE_DIR
#error "GCCL_SOURCE_DIR must name the source tree (see tests/CMakeLists.txt)"
#endif

namespace gccl {
namespace {

// Sets (or, with nullptr, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = old;
    hadOld_ = old != nullptr;
    if (value == nullptr)
      unsetenv(name);
    else
      setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (hadOld_)
      setenv(name_.c_str(), old_.c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::string old_;
  bool hadOld_ = false;
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

struct DocRow {
  std::string name;
  std::string defaultCell;
  std::vector<std::string> cells;
};

// The rows of the parameter table (header and separator rows left out).
std::vector<DocRow> readDocTable() {
  std::ifstream in(std::string(GCCL_SOURCE_DIR) + "/docs/PARAMETERS.md");
  EXPECT_TRUE(in.good()) << "cannot open " << GCCL_SOURCE_DIR << "/docs/PARAMETERS.md";
  std::vector<DocRow> rows;
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] != '|') continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    std::string cell;
    while (std::getline(ss, cell, '|'))
      cells.push_back(trim(cell));
    if (cells.size() < 3) continue;
    const std::string& first = cells[0];
    if (first == "Parameter" || first.find("---") != std::string::npos) continue;
    DocRow row;
    row.name = first;
    if (row.name.size() >= 2 && row.name.front() == '`' && row.name.back() == '`')
      row.name = row.name.substr(1, row.name.size() - 2);
    row.defaultCell = cells[1];
    row.cells = cells;
    rows.push_back(row);
  }
  return rows;
}

// How the table writes a parameter's default: `300000`, `WARN`, or (empty).
std::string expectedDefaultCell(const ParamInfo& p) {
  std::string text = p.defaultText;
  return text.empty() ? "(empty)" : "`" + text + "`";
}

std::vector<ParamInfo> params() {
  int count = 0;
  const ParamInfo* table = paramTable(&count);
  return std::vector<ParamInfo>(table, table + count);
}

// ---- The documentation ----------------------------------------------------------

TEST(ParamDocs, EveryParameterIsDocumentedWithItsDefault) {
  std::map<std::string, std::string> documented;
  for (const DocRow& row : readDocTable())
    documented[row.name] = row.defaultCell;
  ASSERT_FALSE(params().empty());
  for (const ParamInfo& p : params()) {
    auto it = documented.find(p.name);
    if (it == documented.end()) {
      ADD_FAILURE() << p.name << " is missing from docs/PARAMETERS.md";
      continue;
    }
    EXPECT_EQ(it->second, expectedDefaultCell(p)) << "default of " << p.name;
  }
}

TEST(ParamDocs, EveryDocumentedNameIsAParameter) {
  std::set<std::string> declared;
  for (const ParamInfo& p : params())
    declared.insert(p.name);
  const std::regex gcclName("GCCL_[A-Z0-9_]+");
  std::vector<DocRow> rows = readDocTable();
  ASSERT_FALSE(rows.empty());
  for (const DocRow& row : rows) {
    EXPECT_EQ(declared.count(row.name), 1u) << "the table documents unknown " << row.name;
    for (size_t c = 1; c < row.cells.size(); ++c) {
      const std::string& cell = row.cells[c];
      for (std::sregex_iterator m(cell.begin(), cell.end(), gcclName), end; m != end; ++m)
        EXPECT_EQ(declared.count(m->str()), 1u)
            << "row " << row.name << " mentions unknown " << m->str();
    }
  }
}

TEST(ParamDocs, EveryParameterIsDocumentedOnce) {
  std::map<std::string, int> seen;
  for (const DocRow& row : readDocTable())
    ++seen[row.name];
  for (const auto& [name, n] : seen)
    EXPECT_EQ(n, 1) << name << " has " << n << " rows";
}

TEST(ParamTable, NamesAreUniqueAndPrefixed) {
  std::set<std::string> names;
  for (const ParamInfo& p : params()) {
    EXPECT_EQ(std::string(p.name).rfind("GCCL_", 0), 0u) << p.name;
    EXPECT_TRUE(names.insert(p.name).second) << p.name << " declared twice";
    EXPECT_NE(std::string(p.doc), "") << p.name;
  }
}

// ---- The environment ------------------------------------------------------------

TEST(ParamEnv, UnsetIntegerTakesTheDefault) {
  ScopedEnv env("GCCL_TIMEOUT_MS", nullptr);
  EXPECT_EQ(param::TimeoutMs(), 300000);
}

TEST(ParamEnv, EnvironmentOverridesTheIntegerDefault) {
  ScopedEnv env("GCCL_TIMEOUT_MS", "1234");
  EXPECT_EQ(param::TimeoutMs(), 1234);
}

TEST(ParamEnv, EnvironmentOverridesTheStringDefault) {
  ScopedEnv env("GCCL_ALGO_ALLREDUCE", "ring");
  EXPECT_EQ(param::AlgoAllReduce(), "ring");
}

TEST(ParamEnv, EmptyValueTakesTheDefault) {
  ScopedEnv a("GCCL_TIMEOUT_MS", "");
  ScopedEnv b("GCCL_ALGO_ALLREDUCE", "");
  EXPECT_EQ(param::TimeoutMs(), 300000);
  EXPECT_EQ(param::AlgoAllReduce(), "auto");
  EXPECT_EQ(lookupParam("GCCL_TIMEOUT_MS"), nullptr);
}

TEST(ParamEnv, NonIntegerFallsBackToTheDefault) {
  for (const char* bad : {"abc", "12abc", "1.5", " ", "12 ", "--3"}) {
    ScopedEnv env("GCCL_TIMEOUT_MS", bad);
    EXPECT_EQ(param::TimeoutMs(), 300000) << "GCCL_TIMEOUT_MS=\"" << bad << "\"";
  }
}

TEST(ParamEnv, OutOfRangeIntegerFallsBackToTheDefault) {
  ScopedEnv env("GCCL_TIMEOUT_MS", "99999999999999999999999");
  EXPECT_EQ(param::TimeoutMs(), 300000);
}

TEST(ParamEnv, NegativeIntegerIsReadAsIs) {
  ScopedEnv env("GCCL_SOCKBUF_BYTES", "-5");
  EXPECT_EQ(param::SockBufBytes(), -5);
}

TEST(ParamEnv, LookupReturnsTheRawEnvironmentValue) {
  ScopedEnv env("GCCL_SOCKET_FAMILY", "AF_INET6");
  ASSERT_NE(lookupParam("GCCL_SOCKET_FAMILY"), nullptr);
  EXPECT_STREQ(lookupParam("GCCL_SOCKET_FAMILY"), "AF_INET6");
}

// ---- The conf file (each in a fresh process) -------------------------------------

bool checkInt(const char* what, int64_t got, int64_t want) {
  if (got == want) return true;
  std::fprintf(stderr, "%s is %lld, expected %lld\n", what, static_cast<long long>(got),
               static_cast<long long>(want));
  return false;
}

bool checkStr(const char* what, const std::string& got, const std::string& want) {
  if (got == want) return true;
  std::fprintf(stderr, "%s is \"%s\", expected \"%s\"\n", what, got.c_str(), want.c_str());
  return false;
}

// Writes `conf` to a fresh file, points GCCL_CONF_FILE at it, runs `checks`
// (each reports its own mismatch on stderr) and exits: 0 when all held.
[[noreturn]] void runWithConfFile(const std::string& conf, const std::function<bool()>& checks) {
  const char* tmp = std::getenv("TMPDIR");
  std::string path =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/gccl-test-params-XXXXXX";
  int fd = mkstemp(path.data());
  if (fd < 0) {
    std::perror("mkstemp");
    _exit(2);
  }
  bool written = write(fd, conf.data(), conf.size()) == static_cast<ssize_t>(conf.size());
  close(fd);
  setenv("GCCL_CONF_FILE", path.c_str(), 1);
  bool ok = written && checks();
  unlink(path.c_str());
  _exit(ok ? 0 : 1);
}

class ParamConfFile : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(ParamConfFile, ValuesAreRead) {
  EXPECT_EXIT(runWithConfFile("GCCL_TIMEOUT_MS=4321\nGCCL_ALGO_ALLREDUCE=rd\n",
                              []() -> bool {
                                unsetenv("GCCL_TIMEOUT_MS");
                                unsetenv("GCCL_ALGO_ALLREDUCE");
                                return checkInt("GCCL_TIMEOUT_MS", param::TimeoutMs(), 4321) &
                                       checkStr("GCCL_ALGO_ALLREDUCE", param::AlgoAllReduce(),
                                                "rd");
                              }),
              testing::ExitedWithCode(0), "");
}

TEST_F(ParamConfFile, CommentsBlankLinesSpacesAndCrlfAreHandled) {
  EXPECT_EXIT(runWithConfFile("# GCCL_TIMEOUT_MS=1\n"
                              "\n"
                              "not a setting\n"
                              "  GCCL_TIMEOUT_MS \t=  777 \n"
                              "GCCL_CHUNK_BYTES=65536\r\n"
                              "\tGCCL_TRANSPORT= fromfile\n",
                              []() -> bool {
                                unsetenv("GCCL_TIMEOUT_MS");
                                unsetenv("GCCL_CHUNK_BYTES");
                                unsetenv("GCCL_TRANSPORT");
                                return checkInt("GCCL_TIMEOUT_MS", param::TimeoutMs(), 777) &
                                       checkInt("GCCL_CHUNK_BYTES", param::ChunkBytes(), 65536) &
                                       checkStr("GCCL_TRANSPORT", param::Transport(), "fromfile");
                              }),
              testing::ExitedWithCode(0), "");
}

TEST_F(ParamConfFile, EmptyOrNonIntegerValueTakesTheDefault) {
  EXPECT_EXIT(runWithConfFile("GCCL_TIMEOUT_MS=soon\nGCCL_RENDEZVOUS_DIR=\n",
                              []() -> bool {
                                unsetenv("GCCL_TIMEOUT_MS");
                                unsetenv("GCCL_RENDEZVOUS_DIR");
                                return checkInt("GCCL_TIMEOUT_MS", param::TimeoutMs(), 300000) &
                                       checkStr("GCCL_RENDEZVOUS_DIR", param::RendezvousDir(),
                                                "/tmp");
                              }),
              testing::ExitedWithCode(0), "");
}

TEST_F(ParamConfFile, EnvironmentWinsOverTheFile) {
  EXPECT_EXIT(runWithConfFile("GCCL_NSOCKS_PERPEER=3\nGCCL_CHUNK_BYTES=8192\n",
                              []() -> bool {
                                setenv("GCCL_NSOCKS_PERPEER", "5", 1);
                                unsetenv("GCCL_CHUNK_BYTES");
                                return checkInt("GCCL_NSOCKS_PERPEER", param::NSocksPerPeer(), 5) &
                                       checkInt("GCCL_CHUNK_BYTES", param::ChunkBytes(), 8192);
                              }),
              testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace gccl

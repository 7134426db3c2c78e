#include "base/param.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>

#include "base/log.h"

namespace gccl {

namespace {

const ParamInfo kParams[] = {
#define GCCL_PARAM(Name, env, type, def, doc) \
  {env, std::strcmp(#type, "Int") == 0, GCCL_DEFAULT_TEXT_##type(def), doc},
#define GCCL_DEFAULT_TEXT_Int(def) #def
#define GCCL_DEFAULT_TEXT_Str(def) def
#include "base/params.def"
#undef GCCL_PARAM
};

// Values from GCCL_CONF_FILE, read once.
const std::map<std::string, std::string>& fileParams() {
  static std::map<std::string, std::string> values;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* path = std::getenv("GCCL_CONF_FILE");
    if (path == nullptr || *path == '\0') return;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      size_t start = line.find_first_not_of(" \t");
      if (start == std::string::npos || line[start] == '#') continue;
      size_t eq = line.find('=', start);
      if (eq == std::string::npos) continue;
      std::string key = line.substr(start, eq - start);
      while (!key.empty() && (key.back() == ' ' || key.back() == '\t'))
        key.pop_back();
      std::string value = line.substr(eq + 1);
      size_t vs = value.find_first_not_of(" \t");
      value = vs == std::string::npos ? "" : value.substr(vs);
      while (!value.empty() &&
             (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
        value.pop_back();
      values[key] = value;
    }
  });
  return values;
}

int64_t intParam(const char* env, int64_t def) {
  const char* text = lookupParam(env);
  if (text == nullptr) return def;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') {
    GCCL_WARN(kLogEnv, "%s=\"%s\" is not an integer; using the default %lld", env, text,
              static_cast<long long>(def));
    return def;
  }
  return v;
}

std::string strParam(const char* env, const char* def) {
  const char* text = lookupParam(env);
  return text == nullptr ? std::string(def) : std::string(text);
}

}  // namespace

const ParamInfo* paramTable(int* count) {
  *count = static_cast<int>(sizeof(kParams) / sizeof(kParams[0]));
  return kParams;
}

const char* lookupParam(const char* name) {
  const char* v = std::getenv(name);
  if (v != nullptr && *v != '\0') return v;
  const auto& file = fileParams();
  auto it = file.find(name);
  if (it != file.end() && !it->second.empty()) return it->second.c_str();
  return nullptr;
}

namespace param {
#define GCCL_PARAM_Int(Name, env, def) \
  int64_t Name() {                     \
    return intParam(env, def);         \
  }
#define GCCL_PARAM_Str(Name, env, def) \
  std::string Name() {                 \
    return strParam(env, def);         \
  }
#define GCCL_PARAM(Name, env, type, def, doc) GCCL_PARAM_##type(Name, env, def)
#include "base/params.def"
#undef GCCL_PARAM
#undef GCCL_PARAM_Int
#undef GCCL_PARAM_Str
}  // namespace param

}  // namespace gccl

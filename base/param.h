// GCCL_* parameters: declared once in params.def, read from the environment
// (or from the file named by GCCL_CONF_FILE, lines NAME=VALUE; the environment wins).
#pragma once

#include <cstdint>
#include <string>

namespace gccl {

struct ParamInfo {
  const char* name;  // environment variable
  bool isInt;
  const char* defaultText;
  const char* doc;
};

// All declared parameters, in declaration order; *count receives their number.
const ParamInfo* paramTable(int* count);

namespace param {
#define GCCL_PARAM_Int(Name) int64_t Name();
#define GCCL_PARAM_Str(Name) std::string Name();
#define GCCL_PARAM(Name, env, type, def, doc) GCCL_PARAM_##type(Name)
#include "base/params.def"
#undef GCCL_PARAM
#undef GCCL_PARAM_Int
#undef GCCL_PARAM_Str
}  // namespace param

// Raw lookup: environment first, then the config file; nullptr when unset or empty.
const char* lookupParam(const char* name);

}  // namespace gccl

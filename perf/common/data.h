// Typed buffers seen as doubles, for filling the check's inputs and comparing
// its results. Every value the check stores is exactly representable in the
// element type, so a double carries it without loss.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gccl/gccl.h"

namespace gperf {

bool isFloating(gcclDataType_t t);

// buf[k] = v[k] for k < n.
void storeValues(gcclDataType_t t, void* buf, size_t n, const double* v);
// v[k] = buf[k] for k < n.
void loadValues(gcclDataType_t t, const void* buf, size_t n, double* v);

// A value no correct result can take: NaN for floating types, the most
// negative value for signed ones, the largest for unsigned ones (the check's
// inputs are bounded so that no result reaches those).
void fillPoison(gcclDataType_t t, void* buf, size_t n);

// Elements k < n with buf[k] != expected[k]; with tolerance > 0, those
// further than that from it. NaN is always wrong.
size_t countWrong(gcclDataType_t t, const void* buf, size_t n, const double* expected,
                  double tolerance);

// Elements that differ between two copies of n elements.
size_t countChanged(const void* a, const void* b, size_t n, size_t elemSize);

// The largest input magnitude for which every partial result of `op` over
// `nranks` ranks stays exact and short of the poison value.
int64_t defaultRange(gcclDataType_t t, gcclRedOp_t op, int nranks);

// The spacing of the type's values just above 1.
double typeEpsilon(gcclDataType_t t);

}  // namespace gperf

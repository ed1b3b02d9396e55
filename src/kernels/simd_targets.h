// The Highway targets a dispatched kernel file compiles: include it first, before
// <hwy/foreach_target.h>. Every target the compiler can, not only those at least as good as
// the build's -march baseline, so that tests can run each one this CPU supports (see simd.h);
// SSSE3 adds nothing over SSE4 for these kernels; AVX3_DL (Ice Lake / Zen 4) is opt-in in
// Highway 1.0.3.
#pragma once

#ifndef HWY_COMPILE_ALL_ATTAINABLE
#define HWY_COMPILE_ALL_ATTAINABLE
#endif
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif

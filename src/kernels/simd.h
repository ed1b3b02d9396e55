// Which Highway target the kernels run, for tests and benchmarks.
//
// Note for other kernel authors (K2): every Highway-dispatched kernel in this layer should
// follow matmul_simd.cc: HWY_TARGET_INCLUDE + foreach_target, one exported entry point per
// kernel that does a whole row range, HWY_DYNAMIC_DISPATCH once per call (never per row), and
// threading outside the dispatched code (kernels/matmul.cc splits output rows into tasks of
// kMatMulRowsPerTask). ForceSimdTarget below then lets a test run every target the CPU has,
// provided the file compiles them all: with -march=native Highway 1.0.3 otherwise builds only
// the native target (and fails to configure it unless HWY_WANT_AVX3_DL is defined), so define
// HWY_COMPILE_ALL_ATTAINABLE and HWY_WANT_AVX3_DL before the Highway includes: include
// kernels/simd_targets.h first, as every dispatched file here does. All of them must compile
// the same targets: see the note in quant_matmul.cc on hwy::ChosenTarget::GetIndex.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace whale {

// Highway targets this build compiled AND this CPU supports, best first (Highway's bit values).
std::vector<int64_t> SupportedSimdTargets();
// Restricts dynamic dispatch to `target` (one of SupportedSimdTargets); 0 restores the default.
// Process-wide: tests only, never while another thread runs a kernel.
void ForceSimdTarget(int64_t target);
// Name of a target ("AVX2", "AVX3", "SSE4", "EMU128", ...).
std::string SimdTargetName(int64_t target);
// Name of the target MatMul dispatches to right now.
std::string ActiveSimdTargetName();
// Whether one-token BF16 products on the active target run through vdpbf16ps with x split into
// two BF16 halves (kernels/bf16_pairs-inl.h): AVX-512 targets on CPUs with AVX512_BF16. Their
// error bound is 2^-16 Σ|x·w| wider than F32's (kernels/matmul.h).
bool Bf16PairsActive();
// Turns that path off (true) so that the F32-decode path runs on such CPUs too, or back on.
// Process-wide: tests and benchmarks only, never while another thread runs a kernel.
void DisableBf16Pairs(bool disabled);

}  // namespace whale

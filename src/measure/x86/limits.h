// Probes of the machine's limits per instruction set, one translation unit
// each (avx2_limits.cc) compiled with that ISA's flags by the rule the kernels
// use, called only where dispatch offers the same ISA's table (limits.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace codey::measure::x86 {

// Sum of the 64-bit words of [p, p + n) (n a multiple of 128, p 32-byte
// aligned), read with 256-bit loads: a stream the memory system cannot skip.
uint64_t read_sum_avx2(const uint8_t* p, size_t n);

}  // namespace codey::measure::x86

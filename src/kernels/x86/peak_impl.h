// The int8 multiply-accumulate peak of an instruction set: the loop that
// `codey bench` and kernels_bench time to say how close the matmuls come to
// what the table's instructions can do (KernelTable::int8_peak).
// Include only from src/kernels/x86/avx2*.cc / avx512*.cc.
#pragma once

#include "kernels/x86/simd.h"

namespace codey::kernels::x86 {
namespace {

// Runs `iters` iterations of independent multiply-accumulate chains with the
// widest int8 instruction of S; returns the ops done (2 per byte product).
// AVX-512 VNNI: vpdpbusd zmm (64 u8 x s8 products summed into int32).
// AVX2: vpmaddubsw ymm (32 products summed in pairs into int16), each result
// added once with vpaddw - the least any dot product must do per vpmaddubsw,
// so no AVX2 kernel can exceed it (widening every result with vpmaddwd +
// vpaddd, as a plain AVX2 dot product does, halves it on 3-port Intel cores
// and on Zen 3 alike). Every instruction gets its own operands, hidden from
// the compiler each iteration, so none can be hoisted or merged (an earlier
// version reused one maddubs+madd result for all 8 accumulators and measured
// vpaddd instead).
template <class S>
double int8_peak_impl(int64_t iters) {
  if constexpr (S::kVnni) {
    using I = typename S::I;
    constexpr int kChains = 12;
    I acc[kChains];
    for (int j = 0; j < kChains; ++j) acc[j] = S::set1(j);
    I a = S::c8(3), b = S::c8(5);
    for (int64_t i = 0; i < iters; ++i) {
      for (int j = 0; j < kChains; ++j) acc[j] = S::dpbusd(acc[j], a, b);
      asm volatile("" : "+v"(a), "+v"(b));
    }
    I s = acc[0];
    for (int j = 1; j < kChains; ++j) s = S::sub32(s, acc[j]);
    asm volatile("" ::"v"(s));
    return static_cast<double>(iters) * kChains * (4 * S::R) * 2;
  } else {
    // 2 x 4 operand pairs: 8 distinct vpmaddubsw per iteration, 4 int16 chains.
    __m256i acc[4], a[2], b[4];
    for (int j = 0; j < 4; ++j) {
      acc[j] = _mm256_set1_epi16(static_cast<short>(j));
      b[j] = _mm256_set1_epi8(static_cast<char>(5 + j));
    }
    a[0] = _mm256_set1_epi8(3);
    a[1] = _mm256_set1_epi8(7);
    for (int64_t i = 0; i < iters; ++i) {
      for (int h = 0; h < 2; ++h)
        for (int j = 0; j < 4; ++j) acc[j] = _mm256_add_epi16(acc[j], _mm256_maddubs_epi16(a[h], b[j]));
      asm volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(b[0]), "+x"(b[1]), "+x"(b[2]), "+x"(b[3]));
    }
    const __m256i s = _mm256_add_epi16(_mm256_add_epi16(acc[0], acc[1]), _mm256_add_epi16(acc[2], acc[3]));
    asm volatile("" ::"x"(s));
    return static_cast<double>(iters) * 8 * 32 * 2;
  }
}

}  // namespace
}  // namespace codey::kernels::x86

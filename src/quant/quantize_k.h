// Quantizers of the 256-element super-block formats (K-quants, IQ4_XS).
// n is a multiple of 256; importance (optional) has n weights.
#pragma once

#include <cstdint>

namespace codey::quant {

void quantize_q2_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_q3_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_q4_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_q5_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_q6_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_iq4_xs(const float* x, void* dst, int64_t n, const float* importance);

}  // namespace codey::quant

// Block quantization formats (ggml byte layouts): rows of f32 <-> quantized
// blocks. Reference (scalar) implementations; fast kernels live in kernels/.
#pragma once

#include <cstddef>
#include <cstdint>

#include "codey/tensor.h"

namespace codey {

// Decode n elements (a multiple of the type's block size) of `type` at `src`
// into `dst`. The type must be dequantizable (type_traits(t).dequantizable).
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// Encode n f32 values (a multiple of the block size) into `dst`, which must
// have room for row_bytes(type, n). Returns bytes written. `importance`
// (optional, n weights) biases the error the quantizer minimizes.
size_t quantize_row(TensorType type, const float* src, void* dst, int64_t n, const float* importance = nullptr);

}  // namespace codey

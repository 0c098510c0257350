// The scalar reference kernels, visible to the ISA-specific tables so they
// can start from ref and override only what they speed up.
#pragma once

#include "codey/kernels.h"

namespace codey::kernels {

void ref_decode_row(TensorType type, const void* src, float* dst, int64_t n);
size_t ref_matmul_workspace(TensorType type, int64_t m, int64_t k, int n_threads);
void ref_matmul(const Matrix& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                std::span<uint8_t> workspace, ThreadPool& pool);
size_t ref_mul_mat_id_workspace(TensorType type, int64_t max_rows, int64_t k, int n_threads);
void ref_mul_mat_id(std::span<const Matrix> experts, const int64_t* offsets, const float* x, int64_t ldx, float* y,
                    int64_t ldy, std::span<uint8_t> workspace, ThreadPool& pool);
void ref_attention(const AttentionArgs& a, ThreadPool& pool);
void ref_rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void ref_rope(float* x, int64_t n_head, int64_t head_dim, int32_t pos, const RopeParams& p);
void ref_swiglu(const float* gate, const float* up, float* y, int64_t n);
void ref_geglu(const float* gate, const float* up, float* y, int64_t n);
void ref_softmax(float* x, int64_t n);
void ref_store_row(TensorType type, const float* src, void* dst, int64_t n);

}  // namespace codey::kernels

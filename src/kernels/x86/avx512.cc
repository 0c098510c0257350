// The AVX-512 table (F, BW, VL, DQ, VNNI): 16-row integer matmul with vpdpbusd,
// flash-style attention and 512-bit elementwise ops (get_row from ref).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives in avx512fintrin.h
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "kernels/x86/matmul_impl.h"
#include "kernels/x86/attention_impl.h"
#include "kernels/x86/mul_mat_id_impl.h"
#include "kernels/x86/ops_impl.h"
#include "kernels/x86/peak_impl.h"

namespace codey::kernels {

const KernelTable& avx512_kernel_table() {
  static const KernelTable table = [] {
    KernelTable t = ref_kernel_table();
    t.name = "avx512";
    t.matmul_workspace = x86::matmul_workspace_impl<x86::Zmm>;
    t.matmul = x86::matmul_impl<x86::Zmm>;
    t.mul_mat_id_workspace = x86::mul_mat_id_workspace_impl<x86::Zmm>;
    t.mul_mat_id = x86::mul_mat_id_impl<x86::Zmm>;
    t.repack = x86::repack_impl<x86::Zmm>;
    t.attention = x86::attention_impl<x86::Zmm>;
    t.rms_norm = x86::rms_norm_impl<x86::Zmm>;
    t.rope = x86::rope_impl<x86::Zmm>;
    t.swiglu = x86::swiglu_impl<x86::Zmm>;
    t.geglu = x86::geglu_impl<x86::Zmm>;
    t.softmax = x86::softmax_impl<x86::Zmm>;
    t.store_row = x86::store_row_impl<x86::Zmm>;
    t.int8_peak = x86::int8_peak_impl<x86::Zmm>;
    return t;
  }();
  return table;
}

}  // namespace codey::kernels

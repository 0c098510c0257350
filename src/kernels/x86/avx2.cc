// The AVX2 table (AVX2, FMA, F16C): 8-row integer matmul with maddubs/madd,
// flash-style attention and 256-bit elementwise ops (get_row from ref).
#include "kernels/x86/matmul_impl.h"
#include "kernels/x86/attention_impl.h"
#include "kernels/x86/mul_mat_id_impl.h"
#include "kernels/x86/ops_impl.h"
#include "kernels/x86/peak_impl.h"

namespace codey::kernels {

const KernelTable& avx2_kernel_table() {
  static const KernelTable table = [] {
    KernelTable t = ref_kernel_table();
    t.name = "avx2";
    t.matmul_workspace = x86::matmul_workspace_impl<x86::Ymm>;
    t.matmul = x86::matmul_impl<x86::Ymm>;
    t.mul_mat_id_workspace = x86::mul_mat_id_workspace_impl<x86::Ymm>;
    t.mul_mat_id = x86::mul_mat_id_impl<x86::Ymm>;
    t.repack = x86::repack_impl<x86::Ymm>;
    t.attention = x86::attention_impl<x86::Ymm>;
    t.rms_norm = x86::rms_norm_impl<x86::Ymm>;
    t.rope = x86::rope_impl<x86::Ymm>;
    t.swiglu = x86::swiglu_impl<x86::Ymm>;
    t.geglu = x86::geglu_impl<x86::Ymm>;
    t.softmax = x86::softmax_impl<x86::Ymm>;
    t.store_row = x86::store_row_impl<x86::Ymm>;
    t.int8_peak = x86::int8_peak_impl<x86::Ymm>;
    return t;
  }();
  return table;
}

}  // namespace codey::kernels

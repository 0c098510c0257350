// The AVX2 table (AVX2, FMA, F16C): 8-row integer matmul with maddubs/madd
// and 256-bit elementwise ops; everything else from the scalar reference.
#include "kernels/x86/matmul_impl.h"

namespace codey::kernels {

const KernelTable& avx2_kernel_table() {
  static const KernelTable table = [] {
    KernelTable t = ref_kernel_table();
    t.name = "avx2";
    t.matmul_workspace = x86::matmul_workspace_impl<x86::Ymm>;
    t.matmul = x86::matmul_impl<x86::Ymm>;
    t.repack = x86::repack_impl<x86::Ymm>;
    return t;
  }();
  return table;
}

}  // namespace codey::kernels

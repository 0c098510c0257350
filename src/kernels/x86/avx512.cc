// The AVX-512 table (F, BW, VL, DQ, VNNI): 16-row integer matmul with vpdpbusd
// and 512-bit elementwise ops; everything else from the scalar reference.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives in avx512fintrin.h
#include "kernels/x86/matmul_impl.h"

namespace codey::kernels {

const KernelTable& avx512_kernel_table() {
  static const KernelTable table = [] {
    KernelTable t = ref_kernel_table();
    t.name = "avx512";
    t.matmul_workspace = x86::matmul_workspace_impl<x86::Zmm>;
    t.matmul = x86::matmul_impl<x86::Zmm>;
    t.repack = x86::repack_impl<x86::Zmm>;
    return t;
  }();
  return table;
}

}  // namespace codey::kernels

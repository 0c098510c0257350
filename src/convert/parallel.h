// Internal helpers of convert/: row-parallel conversion of tensors into a
// streaming writer.
#pragma once

#include <functional>
#include <span>

#include "codey/base.h"
#include "codey/gguf.h"
#include "codey/tensor.h"

namespace codey {

using ChunkWriter = std::function<Status(std::span<const uint8_t>)>;

// Runs fn(r0, r1) over [0, n_rows) split across `threads` threads.
void parallel_rows(int threads, int64_t n_rows, const std::function<void(int64_t, int64_t)>& fn);

// Produces n_rows rows of row_len f32 via make_row (called concurrently for
// distinct rows), encodes them as dst_type and streams them to `out`.
Status convert_rows(TensorType dst_type, int64_t row_len, int64_t n_rows, int threads, ChunkWriter& out,
                    const std::function<void(int64_t row, float* dst)>& make_row);

// Finishes a file written to `tmp` and renames it to `output`, so a failed
// write never leaves a partial file under the output name. Returns its size.
Result<uint64_t> publish_output(GgufWriter& w, const std::string& tmp, const std::string& output);

}  // namespace codey

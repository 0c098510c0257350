// HugePageArena: 2 MiB-aligned anonymous blocks advised MADV_HUGEPAGE.
#include <sys/mman.h>

#include <algorithm>

#include "codey/base.h"

namespace codey {
namespace {

constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kMinBlock = size_t{64} << 20;
constexpr size_t kAlign = 64;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// A block of `size` bytes (a multiple of kHuge) starting on a 2 MiB boundary:
// map kHuge more than needed and trim both ends.
uint8_t* map_aligned(size_t size) {
  void* p = mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = round_up(base, kHuge);
  if (aligned > base) munmap(p, aligned - base);
  const uintptr_t end = base + size + kHuge, want_end = aligned + size;
  if (end > want_end) munmap(reinterpret_cast<void*>(want_end), end - want_end);
  madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);  // best effort
  return reinterpret_cast<uint8_t*>(aligned);
}

}  // namespace

HugePageArena::HugePageArena(HugePageArena&& other) noexcept
    : mu_(std::move(other.mu_)), blocks_(std::move(other.blocks_)) {
  other.mu_ = std::make_unique<std::mutex>();
  other.blocks_.clear();
}

HugePageArena& HugePageArena::operator=(HugePageArena&& other) noexcept {
  if (this != &other) {
    release();
    mu_ = std::move(other.mu_);
    blocks_ = std::move(other.blocks_);
    other.mu_ = std::make_unique<std::mutex>();
    other.blocks_.clear();
  }
  return *this;
}

HugePageArena::~HugePageArena() { release(); }

void HugePageArena::release() {
  for (const Block& b : blocks_) munmap(b.data, b.size);
  blocks_.clear();
}

uint8_t* HugePageArena::allocate(size_t bytes) {
  bytes = round_up(std::max<size_t>(bytes, 1), kAlign);
  std::lock_guard lock(*mu_);
  for (Block& b : blocks_)
    if (b.size - b.used >= bytes) {
      uint8_t* p = b.data + b.used;
      b.used += bytes;
      return p;
    }
  const size_t size = round_up(std::max(bytes, kMinBlock), kHuge);
  uint8_t* data = map_aligned(size);
  if (!data) return nullptr;
  blocks_.push_back(Block{data, size, bytes});
  return data;
}

bool HugePageArena::lock() const {
  std::lock_guard lock(*mu_);
  bool ok = true;
  for (const Block& b : blocks_)
    if (b.used > 0 && mlock(b.data, b.used) != 0) ok = false;
  return ok;
}

size_t HugePageArena::mapped_bytes() const {
  std::lock_guard lock(*mu_);
  size_t n = 0;
  for (const Block& b : blocks_) n += b.size;
  return n;
}

}  // namespace codey

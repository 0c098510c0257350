// Open-addressing tables for the BPE hot path: pair-of-ids -> merge, and the
// word -> tokens cache. Flat arrays instead of node-based maps, because the
// dependent pointer loads of std::unordered_map dominated tokenization time.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codey/tokenizer.h"

namespace codey::tok {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix64(h ^ w);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return mix64(h ^ tail ^ (uint64_t(s.size() - i) << 56));
}

// (left id, right id) -> (rank, merged id). Built once, then read-only.
class MergeTable {
 public:
  struct Value {
    int32_t rank;
    TokenId merged;
  };

  void build(const std::vector<std::pair<uint64_t, Value>>& entries) {
    size_t cap = 16;
    while (cap < entries.size() * 2) cap <<= 1;
    mask_ = cap - 1;
    keys_.assign(cap, kEmpty);
    values_.assign(cap, Value{});
    for (const auto& [key, value] : entries) {
      size_t i = mix64(key) & mask_;
      while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
      if (keys_[i] == key) continue;  // first (lowest rank) wins, as the reference's emplace
      keys_[i] = key;
      values_[i] = value;
    }
  }

  const Value* find(TokenId left, TokenId right) const {
    if (keys_.empty()) return nullptr;
    const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
    for (size_t i = mix64(key) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are < 2^31, so never a key
  size_t mask_ = 0;
  std::vector<uint64_t> keys_;
  std::vector<Value> values_;
};

// Word (raw bytes) -> token ids, shared by all threads of a tokenizer.
// Bounded: when full it starts over. Thread-safe.
class WordCache {
 public:
  static constexpr size_t kSlots = 1 << 16;
  static constexpr size_t kMaxEntries = kSlots / 2;
  static constexpr size_t kMaxArena = 8 << 20;  // bytes of keys and values

  // Appends the cached tokens of `word` to `out`; false when absent.
  bool lookup(std::string_view word, std::vector<TokenId>& out) const {
    const uint64_t h = hash_bytes(word);
    std::lock_guard lock(mu_);
    if (slots_.empty()) return false;
    for (size_t i = h & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      const Slot& s = slots_[i];
      if (s.key_len == kEmptyLen) return false;
      if (s.hash == h && s.key_len == word.size() && std::memcmp(arena_.data() + s.off, word.data(), word.size()) == 0) {
        const TokenId* ids = ids_.data() + s.ids_off;
        out.insert(out.end(), ids, ids + s.n_ids);
        return true;
      }
    }
  }

  void insert(std::string_view word, std::span<const TokenId> ids) const {
    const uint64_t h = hash_bytes(word);
    std::lock_guard lock(mu_);
    if (slots_.empty() || entries_ >= kMaxEntries || arena_.size() + word.size() > kMaxArena ||
        ids_.size() + ids.size() > kMaxArena / sizeof(TokenId)) {
      slots_.assign(kSlots, Slot{});
      arena_.clear();
      ids_.clear();
      entries_ = 0;
    }
    size_t i = h & (kSlots - 1);
    for (;; i = (i + 1) & (kSlots - 1)) {
      const Slot& s = slots_[i];
      if (s.key_len == kEmptyLen) break;
      if (s.hash == h && s.key_len == word.size() && std::memcmp(arena_.data() + s.off, word.data(), word.size()) == 0)
        return;  // another thread got here first
    }
    Slot& s = slots_[i];
    s.hash = h;
    s.off = uint32_t(arena_.size());
    s.key_len = uint32_t(word.size());
    s.ids_off = uint32_t(ids_.size());
    s.n_ids = uint32_t(ids.size());
    arena_.append(word);
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++entries_;
  }

 private:
  static constexpr uint32_t kEmptyLen = ~uint32_t(0);
  struct Slot {
    uint64_t hash = 0;
    uint32_t off = 0;
    uint32_t key_len = kEmptyLen;
    uint32_t ids_off = 0;
    uint32_t n_ids = 0;
  };
  mutable std::mutex mu_;
  mutable std::vector<Slot> slots_;
  mutable std::string arena_;
  mutable std::vector<TokenId> ids_;
  mutable size_t entries_ = 0;
};

}  // namespace codey::tok

// Open-addressing tables for the vocabulary (bytes -> id) and the merge ranks ((left, right) -> rank, new
// id). They are built once at load (150k entries in a few ms) and read by every encode, so lookups avoid
// allocation and pointer chasing: keys live in one arena, slots are a flat array.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::tok {

inline uint64_t hash_bytes(std::string_view s) {
  // 64-bit FNV-1a over 8-byte words, then a final mix; tokens are short so this stays a handful of
  // multiplies.
  uint64_t h = 0xcbf29ce484222325ull ^ (s.size() * 0x9E3779B97F4A7C15ull);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 32;
  return h;
}

inline uint64_t hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// Byte string -> int32 id. Keys are copied into an arena; a later insert of an existing key overwrites its
// id.
class StringIdMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    rehash(cap);
  }
  void insert(std::string_view key, int32_t id) {
    if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const uint64_t h = hash_bytes(key);
    size_t i = h & (slots_.size() - 1);
    while (slots_[i].len != kEmpty) {
      if (slots_[i].hash == uint32_t(h) && view(slots_[i]) == key) {
        slots_[i].id = id;
        return;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
    slots_[i] = Slot{uint32_t(h), uint32_t(arena_.size()), uint32_t(key.size()), id};
    arena_.append(key);
    ++count_;
  }
  // -1 when absent.
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash_bytes(key);
    size_t i = h & (slots_.size() - 1);
    while (slots_[i].len != kEmpty) {
      if (slots_[i].hash == uint32_t(h) && view(slots_[i]) == key) return slots_[i].id;
      i = (i + 1) & (slots_.size() - 1);
    }
    return -1;
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  struct Slot {
    uint32_t hash = 0, off = 0, len = kEmpty;
    int32_t id = -1;
  };
  std::string_view view(const Slot& s) const { return std::string_view(arena_).substr(s.off, s.len); }
  void rehash(size_t cap) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    for (const Slot& s : old) {
      if (s.len == kEmpty) continue;
      size_t i = hash_bytes(view(s)) & (cap - 1);
      while (slots_[i].len != kEmpty) i = (i + 1) & (cap - 1);
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t count_ = 0;
};

// (left id, right id) -> merge rank and the id of the merged token.
class PairMap {
 public:
  struct Value {
    int32_t rank = -1, new_id = -1;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    rehash(cap);
  }
  void insert(int32_t a, int32_t b, Value v) {
    if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const uint64_t k = key(a, b);
    size_t i = hash_u64(k) & (slots_.size() - 1);
    while (slots_[i].key != kEmpty) {
      if (slots_[i].key == k) {
        slots_[i].v = v;
        return;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
    slots_[i] = Slot{k, v};
    ++count_;
  }
  const Value* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(a, b);
    size_t i = hash_u64(k) & (slots_.size() - 1);
    while (slots_[i].key != kEmpty) {
      if (slots_[i].key == k) return &slots_[i].v;
      i = (i + 1) & (slots_.size() - 1);
    }
    return nullptr;
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  struct Slot {
    uint64_t key = kEmpty;
    Value v;
  };
  void rehash(size_t cap) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      size_t i = hash_u64(s.key) & (cap - 1);
      while (slots_[i].key != kEmpty) i = (i + 1) & (cap - 1);
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  size_t count_ = 0;
};

}  // namespace tailor::tok

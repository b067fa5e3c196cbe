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
// id. A slot keeps the key's first 8 bytes, so most lookups (tokens are short) never touch the arena.
class StringIdMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    rehash(cap);
  }
  void insert(std::string_view key, int32_t id) { insert_hashed(key, hash_bytes(key), id); }
  // h must be hash_bytes(key).
  void insert_hashed(std::string_view key, uint64_t h, int32_t id) {
    if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const uint64_t pre = prefix(key);
    size_t i = h & (slots_.size() - 1);
    while (slots_[i].len != kEmpty) {
      if (matches(slots_[i], key, uint32_t(h), pre)) {
        slots_[i].id = id;
        return;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
    slots_[i] = Slot{uint32_t(h), uint32_t(key.size()), id, uint32_t(arena_.size()), pre};
    if (key.size() > 8) arena_.append(key.substr(8));
    ++count_;
  }
  // -1 when absent.
  int32_t find(std::string_view key) const { return find_hashed(key, hash_bytes(key)); }
  int32_t find_hashed(std::string_view key, uint64_t h) const {
    if (slots_.empty()) return -1;
    const uint64_t pre = prefix(key);
    size_t i = h & (slots_.size() - 1);
    while (slots_[i].len != kEmpty) {
      if (matches(slots_[i], key, uint32_t(h), pre)) return slots_[i].id;
      i = (i + 1) & (slots_.size() - 1);
    }
    return -1;
  }
  // Starts loading the slot a later find_hashed(.., h) reads first (load-time batches hide memory latency).
  void prefetch(uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[h & (slots_.size() - 1)]);
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  struct Slot {
    uint32_t hash = 0, len = kEmpty;
    int32_t id = -1;
    uint32_t off = 0;     // bytes after the first 8, in arena_
    uint64_t prefix = 0;  // first 8 bytes, zero padded
  };
  static uint64_t prefix(std::string_view key) {
    uint64_t p = 0;
    std::memcpy(&p, key.data(), key.size() < 8 ? key.size() : 8);
    return p;
  }
  bool matches(const Slot& s, std::string_view key, uint32_t h, uint64_t pre) const {
    if (s.hash != h || s.len != key.size() || s.prefix != pre) return false;
    return key.size() <= 8 || std::memcmp(arena_.data() + s.off, key.data() + 8, key.size() - 8) == 0;
  }
  void rehash(size_t cap) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    for (const Slot& s : old) {
      if (s.len == kEmpty) continue;
      // The full hash is not kept; the low 32 bits are enough to place the slot in tables up to 2^32 entries.
      size_t i = s.hash & (cap - 1);
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
  void prefetch(int32_t a, int32_t b) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash_u64(key(a, b)) & (slots_.size() - 1)]);
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

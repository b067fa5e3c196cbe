#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>

#include "tokenizer/utf8.h"

namespace tailor::tok {

namespace {
// Maps a byte-level spelling ("Ġthe") back to bytes (" the"); false if some code point is outside the
// alphabet.
bool byte_level_to_bytes(std::string_view s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    int n = utf8_decode(s, i, &cp);
    if (n == 0) return false;
    int b = unicode_to_byte(cp);
    if (b < 0) return false;
    out += char(b);
    i += size_t(n);
  }
  return true;
}

struct Symbol {
  int32_t id;
  int32_t prev, next;
  uint32_t len;  // bytes of the word covered; 0 once merged into its left neighbour
};

struct Merge {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};
// Min-heap on (rank, pos): the lowest rank first, the leftmost among equal ranks (HF's Merge ordering).
struct MergeAfter {
  bool operator()(const Merge& a, const Merge& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};
}  // namespace

Result<std::unique_ptr<Bpe>> Bpe::create(BpeConfig cfg) {
  std::unique_ptr<Bpe> m(new Bpe());
  m->vocab_ = std::move(cfg.vocab);
  m->present_ = std::move(cfg.present);
  m->present_.resize(m->vocab_.size(), false);
  m->byte_level_ = cfg.byte_level;
  m->fuse_unk_ = cfg.fuse_unk;
  m->byte_fallback_ = cfg.byte_fallback;
  m->ignore_merges_ = cfg.ignore_merges;
  m->prefix_ = cfg.continuing_subword_prefix;
  m->suffix_ = cfg.end_of_word_suffix;

  const size_t n = m->vocab_.size();
  m->alpha_.reserve(n);
  {
    // Inserted in batches whose slots are prefetched first: every insert into a table this size misses cache.
    constexpr size_t kBatch = 32;
    std::array<std::string, kBatch> keys;
    std::array<uint64_t, kBatch> hashes{};
    std::array<int32_t, kBatch> ids{};
    for (size_t base = 0; base < n; base += kBatch) {
      size_t count = 0;
      for (size_t id = base; id < std::min(n, base + kBatch); ++id) {
        if (!m->present_[id]) continue;
        const std::string& t = m->vocab_[id];
        if (m->byte_level_ && !byte_level_to_bytes(t, keys[count])) {
          m->extra_names_.insert(t, int32_t(id));
          continue;
        }
        if (!m->byte_level_) keys[count] = t;
        hashes[count] = hash_bytes(keys[count]);
        m->alpha_.prefetch(hashes[count]);
        ids[count++] = int32_t(id);
      }
      for (size_t k = 0; k < count; ++k) m->alpha_.insert_hashed(keys[k], hashes[k], ids[k]);
    }
  }
  for (int b = 0; b < 256; ++b) {
    m->byte_ids_[b] = m->alpha_.find(std::string(1, char(b)));
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m->byte_fallback_ids_[b] = m->find(name);
    if (m->byte_fallback_ids_[b] >= 0) m->fallback_byte_of_[m->byte_fallback_ids_[b]] = b;
  }
  if (cfg.has_unk) m->unk_id_ = m->find(cfg.unk_token);

  // Merges: three vocabulary lookups each, resolved in batches whose table slots are prefetched first,
  // because at this size every lookup is a cache miss and the loop would otherwise wait on memory one miss at
  // a time.
  m->merges_.reserve(cfg.merges.size());
  constexpr size_t kBatch = 64;
  struct Key {
    std::string s;
    uint64_t h = 0;
    bool in_alpha = true;  // false: look the name up in extra_names_
  };
  std::array<Key, 3 * kBatch> keys;
  std::array<int32_t, 3 * kBatch> found{};
  auto make_key = [&](Key& k, std::string_view name) {
    if (!m->byte_level_) {
      k.s.assign(name);
      k.in_alpha = true;
    } else {
      k.in_alpha = byte_level_to_bytes(name, k.s);
      if (!k.in_alpha) k.s.assign(name);
    }
    k.h = hash_bytes(k.s);
    (k.in_alpha ? m->alpha_ : m->extra_names_).prefetch(k.h);
  };
  std::string merged;
  for (size_t base = 0; base < cfg.merges.size(); base += kBatch) {
    const size_t count = std::min(kBatch, cfg.merges.size() - base);
    for (size_t j = 0; j < count; ++j) {
      const auto& [a, b] = cfg.merges[base + j];
      merged = a;
      if (!m->prefix_.empty() && b.compare(0, m->prefix_.size(), m->prefix_) == 0) {
        merged.append(b, m->prefix_.size(), std::string::npos);
      } else {
        merged += b;
      }
      make_key(keys[3 * j], a);
      make_key(keys[3 * j + 1], b);
      make_key(keys[3 * j + 2], merged);
    }
    for (size_t k = 0; k < 3 * count; ++k) {
      found[k] = (keys[k].in_alpha ? m->alpha_ : m->extra_names_).find_hashed(keys[k].s, keys[k].h);
    }
    for (size_t j = 0; j < count; ++j) m->merges_.prefetch(found[3 * j], found[3 * j + 1]);
    for (size_t j = 0; j < count; ++j) {
      const size_t i = base + j;
      const auto& [a, b] = cfg.merges[i];
      const int32_t ia = found[3 * j], ib = found[3 * j + 1], inew = found[3 * j + 2];
      if (ia < 0 || ib < 0) {
        return invalid_argument(cat("model.merges[", i, "]: token \"", ia < 0 ? a : b,
                                    "\" is not in model.vocab (merges must combine vocabulary tokens)"));
      }
      if (inew < 0) {
        return invalid_argument(
            cat("model.merges[", i, "]: the merged token \"", a, b, "\" is not in model.vocab"));
      }
      m->merges_.insert(ia, ib, PairMap::Value{int32_t(i), inew});
    }
  }
  return m;
}

int32_t Bpe::find(std::string_view token) const {
  if (!byte_level_) return alpha_.find(token);
  thread_local std::string bytes;
  if (byte_level_to_bytes(token, bytes)) return alpha_.find(bytes);
  return extra_names_.find(token);
}

int Bpe::byte_of_fallback_id(int32_t id) const {
  auto it = fallback_byte_of_.find(id);
  return it == fallback_byte_of_.end() ? -1 : it->second;
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const int32_t id = alpha_.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (word.size() == 1 && byte_level_ && prefix_.empty() && suffix_.empty() &&
      byte_ids_[uint8_t(word[0])] >= 0) {
    out.push_back(byte_ids_[uint8_t(word[0])]);
    return;
  }
  if (word.size() > kMaxCachedWordBytes) {
    merge_word(word, out);
    return;
  }
  Shard& shard = cache_[(hash_bytes(word) >> 40) % kShards];  // high bits: the map uses the low ones
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.map.find(word);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  std::vector<int32_t> ids(out.begin() + std::ptrdiff_t(start), out.end());
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= kMaxEntriesPerShard) shard.map.clear();
  shard.map.emplace(std::string(word), std::move(ids));
}

void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  const StringIdMap& alpha = alpha_;
  // Scratch space reused across calls on this thread: a word costs no allocation once warm.
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Merge> heap;
  sym.clear();
  heap.clear();
  auto add = [&](int32_t id, uint32_t len) {
    const int32_t k = int32_t(sym.size());
    sym.push_back(Symbol{id, k - 1, k + 1, len});
  };
  // Pending unknown run: HF keeps one unk symbol open so that fuse_unk can extend it.
  int32_t unk_len = 0;
  auto flush_unk = [&] {
    if (unk_len > 0) add(unk_id_, uint32_t(unk_len));
    unk_len = 0;
  };
  thread_local std::string unit;
  for (size_t i = 0; i < word.size();) {
    const size_t n = byte_level_ ? 1 : size_t(utf8_len(static_cast<unsigned char>(word[i])));
    const bool first = i == 0, last = i + n >= word.size();
    int32_t id;
    if (prefix_.empty() && suffix_.empty()) {
      if (byte_level_) {
        id = byte_ids_[uint8_t(word[i])];
        unit.assign(word.substr(i, n));
      } else {
        unit.assign(word.substr(i, n));
        id = alpha.find(unit);
      }
    } else {
      unit.clear();
      if (!first) unit += prefix_;
      unit.append(word.substr(i, n));
      if (last) unit += suffix_;
      id = alpha.find(unit);
    }
    i += n;
    if (id >= 0) {
      flush_unk();
      add(id, uint32_t(n));
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : unit) all = all && byte_fallback_ids_[c] >= 0;
      if (all) {
        // HF does not close an open unk run here: the byte tokens simply follow it.
        for (unsigned char c : unit) add(byte_fallback_ids_[c], 1);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (unk_len > 0 && !fuse_unk_) flush_unk();
      unk_len += int32_t(n);
    }
  }
  flush_unk();
  if (sym.empty()) return;
  sym.back().next = -1;

  for (size_t k = 0; k + 1 < sym.size(); ++k) {
    if (const PairMap::Value* v = merges_.find(sym[k].id, sym[k + 1].id)) {
      heap.push_back(Merge{v->rank, int32_t(k), v->new_id});
    }
  }
  std::make_heap(heap.begin(), heap.end(), MergeAfter{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), MergeAfter{});
    const Merge top = heap.back();
    heap.pop_back();
    Symbol& cur = sym[size_t(top.pos)];
    if (cur.len == 0 || cur.next < 0) continue;
    Symbol& right = sym[size_t(cur.next)];
    const PairMap::Value* v = merges_.find(cur.id, right.id);
    if (!v || v->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    right.len = 0;
    cur.next = right.next;
    if (cur.next >= 0) sym[size_t(cur.next)].prev = top.pos;
    if (cur.prev >= 0) {
      if (const PairMap::Value* pv = merges_.find(sym[size_t(cur.prev)].id, cur.id)) {
        heap.push_back(Merge{pv->rank, cur.prev, pv->new_id});
        std::push_heap(heap.begin(), heap.end(), MergeAfter{});
      }
    }
    if (cur.next >= 0) {
      if (const PairMap::Value* nv = merges_.find(cur.id, sym[size_t(cur.next)].id)) {
        heap.push_back(Merge{nv->rank, top.pos, nv->new_id});
        std::push_heap(heap.begin(), heap.end(), MergeAfter{});
      }
    }
  }
  for (const Symbol& s : sym)
    if (s.len != 0) out.push_back(s.id);
}

}  // namespace tailor::tok

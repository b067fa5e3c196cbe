// Both attention kernels (split-K decode on CUDA cores, tensor-core prefill) against cpu::attention over
// several GQA ratios, head sizes, cache dtypes and sequence layouts (several slots in one launch).
#include <algorithm>
#include <cmath>

#include "backend/cpu/ops.h"
#include "backend/cuda/attention.cuh"
#include "cuda_test_util.h"

using namespace tailor;
using namespace tailor::cuda_test;

namespace {

struct Seq {
  int slot;
  int32_t pos0;  // first position of its query tokens; the cache holds rows 0 .. pos0 + n - 1
  int n;         // query tokens
};

struct Case {
  int n_head, n_head_kv, head_dim;
  std::vector<Seq> seqs;
};

enum class Kernel { decode_one_split, decode_split_k, decode_max_split, prefill };

void run_case(Rng& rng, DType kv_t, DType out_t, const Case& c, Kernel kernel, bool distinct_slots = false) {
  const int64_t capacity = 301;
  const int n_slots = 3, D = c.head_dim;
  const int64_t Q = int64_t(c.n_head) * D, slot_elems = int64_t(c.n_head_kv) * capacity * D;
  // Cache contents: random everywhere (rows past a sequence's end must be ignored by the kernels).
  const auto kc = to_dtype(rng.normal(size_t(slot_elems * n_slots)), kv_t);
  const auto vc = to_dtype(rng.normal(size_t(slot_elems * n_slots)), kv_t);
  int64_t T = 0;
  for (const Seq& s : c.seqs) T += s.n;
  const auto q = round_to(rng.normal(size_t(T * Q)), kv_t);
  std::vector<int32_t> pos, slots;
  std::vector<cuda::AttentionTile> tiles;
  std::vector<float> ref(static_cast<size_t>(T * Q));
  const float scale = 1.0f / std::sqrt(float(D));
  int64_t t0 = 0;
  for (const Seq& s : c.seqs) {
    std::vector<int32_t> p(static_cast<size_t>(s.n));
    for (int i = 0; i < s.n; ++i) p[size_t(i)] = s.pos0 + i;
    const uint64_t off = dtype_row_bytes(kv_t, uint64_t(s.slot * slot_elems));
    cpu::attention(&ref[size_t(t0 * Q)], &q[size_t(t0 * Q)], kc.data() + off, vc.data() + off, kv_t, capacity,
                   p.data(), s.n, c.n_head, c.n_head_kv, D, scale);
    for (int i = 0; i < s.n; i += cuda::kPrefillTileRows) {
      const int n = std::min(cuda::kPrefillTileRows, s.n - i);
      tiles.push_back({int32_t(t0 + i), int32_t(n), s.pos0 + i + n - 1, int32_t(s.slot)});
    }
    pos.insert(pos.end(), p.begin(), p.end());
    slots.insert(slots.end(), size_t(s.n), s.slot);
    t0 += s.n;
  }
  std::sort(tiles.begin(), tiles.end(), [](auto& a, auto& b) { return a.max_pos > b.max_pos; });
  const auto q_t = to_dtype(q, kv_t);
  DevBuf d_q(q_t.data(), q_t.size()), d_k(kc.data(), kc.size()), d_v(vc.data(), vc.size()),
      d_pos(pos.data(), pos.size() * 4), d_slots(slots.data(), slots.size() * 4),
      d_tiles(tiles.data(), tiles.size() * sizeof(cuda::AttentionTile)),
      d_out(dtype_row_bytes(out_t, ref.size()));
  cuda::AttentionParams p;
  p.q = d_q.get();
  p.q_stride = Q;
  p.cache.k = d_k.get();
  p.cache.v = d_v.get();
  p.cache.t = kv_t;
  p.cache.capacity = capacity;
  p.cache.slot_stride = slot_elems;
  p.pos = d_pos.as<int32_t>();
  p.slots = d_slots.as<int32_t>();
  p.out = d_out.get();
  p.out_t = out_t;
  p.out_stride = Q;
  p.n_tok = T;
  p.n_head = c.n_head;
  p.n_head_kv = c.n_head_kv;
  p.head_dim = D;
  p.scale = scale;
  p.distinct_slots = distinct_slots;
  if (kernel == Kernel::prefill) {
    ASSERT_EQ(cuda::attention_prefill(p, d_tiles.as<cuda::AttentionTile>(), int(tiles.size()), nullptr),
              cudaSuccess);
  } else {
    // decode_max_split: the largest grid (most splits empty, the rest 64 keys each), as a graph captured for
    // a long context runs a short one.
    const int n_split = kernel == Kernel::decode_one_split ? 1
                        : kernel == Kernel::decode_max_split
                            ? 64
                            : std::max(2, cuda::attention_decode_splits(T, c.n_head_kv, 132, capacity));
    DevBuf ws(std::max<size_t>(16, cuda::attention_decode_workspace_bytes(T, c.n_head, D, n_split)));
    DevBuf counters(size_t(T) * c.n_head * 4);
    cudaMemset(counters.get(), 0, counters.size());  // zero before first use; each launch leaves them so
    // Twice with the same counters and a re-poisoned workspace (as graph replays after other launches do):
    // the second result must be just as right.
    ASSERT_EQ(cuda::attention_decode(p, n_split, ws.get(), counters.as<unsigned>(), nullptr), cudaSuccess);
    sync_or_fail();
    d_out.poison();
    ws.poison();
    ASSERT_EQ(cuda::attention_decode(p, n_split, ws.get(), counters.as<unsigned>(), nullptr), cudaSuccess);
    sync_or_fail();
  }
  sync_or_fail();
  // Operands are identical on both sides; the GPU may round P to the cache dtype (prefill) or the output to
  // out_t.
  const DType loosest = (kernel == Kernel::prefill || out_t != DType::f32) ? DType::bf16 : kv_t;
  EXPECT_LE(rel_err(from_dtype(d_out.bytes().data(), out_t, ref.size()), ref), tolerance(loosest));
}

std::vector<Case> cases(int head_dim) {
  return {
      {4, 1, head_dim, {{0, 0, 1}}},                              // first token
      {8, 2, head_dim, {{1, 200, 1}, {0, 5, 1}, {2, 299, 1}}},    // decode batch over three slots
      {7, 7, head_dim, {{2, 0, 37}}},                             // prefill, MHA, odd length
      {28, 4, head_dim, {{0, 0, 100}, {1, 150, 3}}},              // prefill + continuation (GQA 7:1)
      {12, 4, head_dim, {{1, 31, 70}, {2, 0, 1}, {0, 250, 51}}},  // mixed, sequence ends at capacity - 1
  };
}

TEST(CudaOps, AttentionDecode) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  for (DType kv_t : {DType::f32, DType::f16, DType::bf16})
    for (int hd : {16, 64, 96, 128, 256})
      for (const Case& c : cases(hd))
        for (Kernel k : {Kernel::decode_one_split, Kernel::decode_split_k, Kernel::decode_max_split}) {
          SCOPED_TRACE(testing::Message()
                       << "kv " << dtype_name(kv_t) << " head_dim " << hd << " heads " << c.n_head << "/"
                       << c.n_head_kv << " seqs " << c.seqs.size() << " splits "
                       << (k == Kernel::decode_one_split ? "1"
                           : k == Kernel::decode_split_k ? "k"
                                                         : "64"));
          run_case(rng, kv_t, DType::f32, c, k);
          // One token per distinct slot (the decode graph's case): older keys are read before the wait.
          if (std::all_of(c.seqs.begin(), c.seqs.end(), [](const Seq& s) { return s.n == 1; }))
            run_case(rng, kv_t, DType::f32, c, k, true);
        }
  // Outputs in the half types the runner feeds to o_proj.
  run_case(rng, DType::bf16, DType::bf16, cases(128)[1], Kernel::decode_split_k, true);
  run_case(rng, DType::f16, DType::f16, cases(64)[3], Kernel::decode_one_split);
}

TEST(CudaOps, AttentionPrefillTensorCores) {
  TAILOR_REQUIRE_GPU();
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  if (major < 8) GTEST_SKIP() << "tensor-core prefill attention needs sm_80+";
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  for (DType kv_t : {DType::f16, DType::bf16})
    for (int hd : {64, 80, 96, 128}) {
      ASSERT_TRUE(cuda::attention_prefill_supported(kv_t, hd));
      for (const Case& c : cases(hd)) {
        SCOPED_TRACE(testing::Message() << "kv " << dtype_name(kv_t) << " head_dim " << hd << " heads "
                                        << c.n_head << "/" << c.n_head_kv << " seqs " << c.seqs.size());
        run_case(rng, kv_t, DType::f32, c, Kernel::prefill);
        run_case(rng, kv_t, kv_t, c, Kernel::prefill);
      }
    }
  EXPECT_FALSE(cuda::attention_prefill_supported(DType::f32, 128));
  EXPECT_FALSE(cuda::attention_prefill_supported(DType::bf16, 16));
}

}  // namespace

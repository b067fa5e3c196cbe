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

void run_case(Rng& rng, DType kv_t, DType out_t, const Case& c, Kernel kernel, bool distinct_slots = false,
              int heads_per_block = cuda::kDecodeHeadsPerBlock) {
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
  p.heads_per_block = heads_per_block;
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
  // The other block shapes (query heads per block).
  for (int hpb : {8})
    for (int hd : {16, 64, 128})
      for (const Case& c : cases(hd))
        for (Kernel k : {Kernel::decode_one_split, Kernel::decode_split_k, Kernel::decode_max_split}) {
          SCOPED_TRACE(testing::Message() << "heads per block " << hpb << " head_dim " << hd << " heads "
                                          << c.n_head << "/" << c.n_head_kv);
          run_case(rng, DType::bf16, DType::f32, c, k, false, hpb);
        }
  // Outputs in the half types the runner feeds to o_proj.
  run_case(rng, DType::bf16, DType::bf16, cases(128)[1], Kernel::decode_split_k, true);
  run_case(rng, DType::f16, DType::f16, cases(64)[3], Kernel::decode_one_split);
}

// The decode attention with RoPE fused in (AttentionParams::qkv) against rope_qkv_store followed by the
// plain decode attention, on the same random projection output and caches: the caches must come out
// bit-identical (same arithmetic, rope_head.cuh) and the outputs equal up to summation order (none).
TEST(CudaOps, AttentionDecodeFusedRope) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const int64_t capacity = 301;
  const int n_slots = 3;
  for (DType kv_t : {DType::bf16, DType::f16, DType::f32})
    for (int hd : {64, 128})
      for (int variant = 0; variant < 3; ++variant)  // 0 plain, 1 + bias, 2 + bias + q/k norm (Qwen3)
        for (int n_split : {1, 0, 64}) {             // 0: the runner's split count
          const int H = 8, HKV = 2, D = hd;
          const std::vector<int32_t> pos = {200, 5, 299}, slots = {1, 0, 2};  // one token per slot
          const int64_t T = 3, row = int64_t(H + 2 * HKV) * D, Q = int64_t(H) * D;
          SCOPED_TRACE(testing::Message() << "kv " << dtype_name(kv_t) << " head_dim " << hd << " variant "
                                          << variant << " n_split " << n_split);
          const auto qkv = rng.normal(size_t(T * row));
          const auto bias = rng.normal(size_t(row));
          auto qn = rng.normal(size_t(D)), kn = rng.normal(size_t(D));
          std::vector<float> inv_freq(size_t(D / 2));
          for (int i = 0; i < D / 2; ++i)
            inv_freq[size_t(i)] = std::pow(10000.0f, -2.0f * float(i) / float(D));
          const int64_t slot_elems = int64_t(HKV) * capacity * D;
          const auto kc = to_dtype(rng.normal(size_t(slot_elems * n_slots)), kv_t);
          const auto vc = to_dtype(rng.normal(size_t(slot_elems * n_slots)), kv_t);
          DevBuf d_qkv(qkv.data(), qkv.size() * 4), d_bias(bias.data(), bias.size() * 4),
              d_qn(qn.data(), qn.size() * 4), d_kn(kn.data(), kn.size() * 4),
              d_if(inv_freq.data(), inv_freq.size() * 4), d_pos(pos.data(), pos.size() * 4),
              d_slots(slots.data(), slots.size() * 4), d_q(dtype_row_bytes(kv_t, uint64_t(T * Q))),
              d_ka(kc.data(), kc.size()), d_va(vc.data(), vc.size()), d_kb(kc.data(), kc.size()),
              d_vb(vc.data(), vc.size()), d_outa(size_t(T * Q) * 4), d_outb(size_t(T * Q) * 4);
          const float* b = variant >= 1 ? d_bias.as<float>() : nullptr;
          const float* qnp = variant == 2 ? d_qn.as<float>() : nullptr;
          const float* knp = variant == 2 ? d_kn.as<float>() : nullptr;
          const int ns = n_split ? n_split : cuda::attention_decode_splits(T, HKV, 132, capacity);
          DevBuf ws(std::max<size_t>(16, cuda::attention_decode_workspace_bytes(T, H, D, ns)));
          DevBuf counters(size_t(T) * H * 4);
          cudaMemset(counters.get(), 0, counters.size());
          auto params = [&](void* k, void* v, void* out) {
            cuda::AttentionParams p;
            p.q_stride = Q;
            p.cache.k = k;
            p.cache.v = v;
            p.cache.t = kv_t;
            p.cache.capacity = capacity;
            p.cache.slot_stride = slot_elems;
            p.pos = d_pos.as<int32_t>();
            p.slots = d_slots.as<int32_t>();
            p.out = out;
            p.out_t = DType::f32;
            p.out_stride = Q;
            p.n_tok = T;
            p.n_head = H;
            p.n_head_kv = HKV;
            p.head_dim = D;
            p.scale = 1.0f / std::sqrt(float(D));
            p.distinct_slots = true;
            return p;
          };
          // A: separate RoPE/KV store, then attention.
          cuda::KvCacheView ca;
          ca.k = d_ka.get(), ca.v = d_va.get(), ca.t = kv_t, ca.capacity = capacity,
          ca.slot_stride = slot_elems;
          ASSERT_EQ(cuda::rope_qkv_store(d_q.get(), kv_t, d_qkv.as<float>(), b, qnp, knp, 1e-6f,
                                         d_pos.as<int32_t>(), d_slots.as<int32_t>(), d_if.as<float>(), ca, T,
                                         H, HKV, D, nullptr),
                    cudaSuccess);
          cuda::AttentionParams pa = params(d_ka.get(), d_va.get(), d_outa.get());
          pa.q = d_q.get();
          ASSERT_EQ(cuda::attention_decode(pa, ns, ws.get(), counters.as<unsigned>(), nullptr), cudaSuccess);
          // B: fused.
          cuda::AttentionParams pb = params(d_kb.get(), d_vb.get(), d_outb.get());
          pb.qkv = d_qkv.as<float>();
          pb.qkv_bias = b;
          pb.q_norm = qnp;
          pb.k_norm = knp;
          pb.norm_eps = 1e-6f;
          pb.inv_freq = d_if.as<float>();
          ASSERT_EQ(cuda::attention_decode(pb, ns, ws.get(), counters.as<unsigned>(), nullptr), cudaSuccess);
          sync_or_fail();
          EXPECT_TRUE(d_ka.bytes() == d_kb.bytes()) << "k cache differs";
          EXPECT_TRUE(d_va.bytes() == d_vb.bytes()) << "v cache differs";
          const auto oa = from_dtype(d_outa.bytes().data(), DType::f32, size_t(T * Q));
          const auto ob = from_dtype(d_outb.bytes().data(), DType::f32, size_t(T * Q));
          EXPECT_LE(rel_err(ob, oa), 1e-6);
        }
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

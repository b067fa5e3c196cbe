// safetensors reader/writer: round trips, sharded folders, and every validation error (code + message).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/json.h"
#include "io/safetensors.h"

namespace tailor {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "tailor_st_XXXXXX").string();
    path_ = mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& f) const { return (fs::path(path_) / f).string(); }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

// A file from a raw header JSON and `data_bytes` zero bytes of data (header length written as given).
std::string make_file(const std::string& header, uint64_t data_bytes = 0) {
  std::string f(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) f[size_t(i)] = char(uint8_t(n >> (8 * i)));
  f += header;
  f.append(size_t(data_bytes), '\0');
  return f;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}
std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

Status validate(const std::string& bytes, std::vector<SafeTensor>* out = nullptr,
                std::map<std::string, std::string>* md = nullptr) {
  std::vector<SafeTensor> tmp;
  return SafeTensorsArchive::validate_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                             "x.safetensors", out ? out : &tmp, md);
}

#define EXPECT_ERROR(st, code_, ...)                                                \
  do {                                                                              \
    const Status _s = (st);                                                         \
    EXPECT_EQ(_s.code(), ErrorCode::code_) << _s.message();                         \
    for (const std::string& _sub : std::initializer_list<std::string>{__VA_ARGS__}) \
      EXPECT_NE(_s.message().find(_sub), std::string::npos)                         \
          << "missing '" << _sub << "' in: " << _s.message();                       \
  } while (0)

// 4056 -> "4,056" (messages group digits).
std::string commas(uint64_t v) {
  std::string s = std::to_string(v), r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) r += ',';
    r += s[i];
  }
  return r;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

TEST(SafeTensorsWrite, RoundTripAllDtypes) {
  TempDir dir;
  const DType types[] = {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i8,
                         DType::i16, DType::i32, DType::i64,  DType::u8,  DType::boolean};
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<TensorToWrite> ts;
  int k = 0;
  for (DType t : types) {
    const Shape shape{3, 5 + k};  // odd sizes so alignment is not accidental
    bufs.push_back(random_bytes(size_t(shape.numel()) * dtype_size(t), uint32_t(k)));
    ts.push_back({cat("t.", dtype_name(t)), t, shape, bufs.back().data()});
    ++k;
  }
  ts.push_back({"scalar", DType::f32, Shape{}, bufs[0].data()});
  ts.push_back({"empty", DType::bf16, Shape{0, 7}, nullptr});
  const std::string path = dir / "m.safetensors";
  ASSERT_TRUE(write_safetensors(path, ts, {{"format", "pt"}, {"note", "x"}}).ok());

  auto a = SafeTensorsArchive::open(path);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->tensors().size(), ts.size());
  EXPECT_EQ(a->metadata().at("format"), "pt");
  EXPECT_EQ(a->metadata().at("note"), "x");
  uint64_t total = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const SafeTensor* t = a->find(ts[i].name);
    ASSERT_NE(t, nullptr) << ts[i].name;
    EXPECT_EQ(t->dtype, ts[i].dtype);
    EXPECT_EQ(t->shape, ts[i].shape);
    const uint64_t n = uint64_t(ts[i].shape.numel()) * dtype_size(ts[i].dtype);
    EXPECT_EQ(t->nbytes, n);
    if (n) {
      EXPECT_EQ(std::memcmp(t->data, ts[i].data, n), 0) << ts[i].name;
    }
    // Zero-copy and aligned: the pointer lies in the mapping, aligned to the element size.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % dtype_size(t->dtype), 0u) << ts[i].name;
    EXPECT_GE(t->data, a->files()[0]->data());
    EXPECT_LE(t->data + t->nbytes, a->files()[0]->data() + a->files()[0]->size());
    EXPECT_EQ(t->view().numel(), ts[i].shape.numel());
    total += n;
  }
  EXPECT_EQ(a->total_bytes(), total);
  EXPECT_EQ(a->find("nope"), nullptr);

  // Format details another reader relies on: header length a multiple of 8, padded with spaces, and a data
  // section with no holes (the reference implementation rejects holes).
  const std::string bytes = read_bytes(path);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; --i) hl = (hl << 8) | uint8_t(bytes[size_t(i)]);
  EXPECT_EQ(hl % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + hl + total);
  auto j = parse_json(std::string_view(bytes).substr(8, hl), "header");
  ASSERT_TRUE(j.ok());
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (auto it = j->begin(); it != j->end(); ++it)
    if (it.key() != "__metadata__") spans.push_back({(*it)["data_offsets"][0], (*it)["data_offsets"][1]});
  std::sort(spans.begin(), spans.end());
  uint64_t at = 0;
  for (auto [b, e] : spans) {
    EXPECT_EQ(b, at);
    at = e;
  }
  EXPECT_EQ(at, total);
}

TEST(SafeTensorsWrite, RejectsBadInput) {
  TempDir dir;
  float x = 1;
  EXPECT_ERROR(write_safetensors(dir / "a.safetensors",
                                 {{"a", DType::f32, Shape{1}, &x}, {"a", DType::f32, Shape{1}, &x}}),
               invalid_argument, "\"a\"");
  EXPECT_ERROR(write_safetensors(dir / "b.safetensors", {{"q", DType::q8_0, Shape{32}, &x}}),
               invalid_argument, "\"q\"", "q8_0");
  EXPECT_ERROR(write_safetensors(dir / "c.safetensors", {{"n", DType::f32, Shape{4}, nullptr}}),
               invalid_argument, "\"n\"");
  EXPECT_FALSE(file_exists(dir / "a.safetensors"));
  EXPECT_ERROR(write_safetensors(dir / "no/such/dir/d.safetensors", {{"a", DType::f32, Shape{1}, &x}}), io);
}

// Two shards + index; also checks that a folder, the index json itself, and a folder with a single
// model.safetensors all open.
class ShardedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 16; ++i) a_[i] = float(i), b_[i] = float(100 + i);
    ASSERT_TRUE(write_safetensors(dir_ / "model-00001-of-00002.safetensors",
                                  {{"embed.weight", DType::f32, Shape{4, 4}, a_},
                                   {"norm.weight", DType::f32, Shape{4}, a_}})
                    .ok());
    ASSERT_TRUE(write_safetensors(dir_ / "model-00002-of-00002.safetensors",
                                  {{"lm_head.weight", DType::f32, Shape{4, 4}, b_}})
                    .ok());
  }
  void write_index(const std::string& weight_map) {
    write_bytes(dir_ / "model.safetensors.index.json",
                cat("{\"metadata\": {\"total_size\": 144}, \"weight_map\": ", weight_map, "}"));
  }
  const std::string kGoodMap =
      R"({"embed.weight": "model-00001-of-00002.safetensors", "norm.weight": "model-00001-of-00002.safetensors",
          "lm_head.weight": "model-00002-of-00002.safetensors"})";
  TempDir dir_;
  float a_[16], b_[16];
};

TEST_F(ShardedTest, OpensFolderAndIndex) {
  write_index(kGoodMap);
  for (const std::string& p : {dir_.str(), dir_ / "model.safetensors.index.json"}) {
    auto a = SafeTensorsArchive::open(p);
    ASSERT_TRUE(a.ok()) << a.status().message();
    EXPECT_EQ(a->files().size(), 2u);
    EXPECT_EQ(a->tensors().size(), 3u);
    const SafeTensor* h = a->find("lm_head.weight");
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->file_index, 1);
    EXPECT_EQ(reinterpret_cast<const float*>(h->data)[5], 105.0f);
    EXPECT_EQ(a->find("norm.weight")->file_index, 0);
    EXPECT_EQ(reinterpret_cast<const float*>(a->find("norm.weight")->data)[3], 3.0f);
    EXPECT_TRUE(a->expect("embed.weight", Shape{4, 4}).ok());
    EXPECT_EQ(a->total_bytes(), 144u);
  }
}

TEST_F(ShardedTest, MissingShard) {
  write_index(
      R"({"embed.weight": "model-00001-of-00002.safetensors", "x.weight": "model-00003-of-00003.safetensors"})");
  EXPECT_ERROR(SafeTensorsArchive::open(dir_.str()).status(), not_found, "model-00003-of-00003.safetensors",
               "x.weight", "incomplete download");
}

TEST_F(ShardedTest, IndexNamesTensorNotInShard) {
  write_index(
      R"({"embed.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00001-of-00002.safetensors"})");
  EXPECT_ERROR(SafeTensorsArchive::open(dir_.str()).status(), corrupt, "lm_head.weight",
               "model-00001-of-00002.safetensors", "does not hold it");
  write_index(
      R"({"embed.weight": "model-00001-of-00002.safetensors", "ghost.weight": "model-00002-of-00002.safetensors"})");
  EXPECT_ERROR(SafeTensorsArchive::open(dir_.str()).status(), corrupt, "ghost.weight", "does not hold it");
}

TEST_F(ShardedTest, DuplicateTensorAcrossShards) {
  ASSERT_TRUE(write_safetensors(dir_ / "model-00002-of-00002.safetensors",
                                {{"lm_head.weight", DType::f32, Shape{4, 4}, b_},
                                 {"norm.weight", DType::f32, Shape{4}, b_}})
                  .ok());
  write_index(kGoodMap);
  EXPECT_ERROR(SafeTensorsArchive::open(dir_.str()).status(), corrupt, "norm.weight",
               "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
}

TEST_F(ShardedTest, BadIndexJson) {
  write_bytes(dir_ / "model.safetensors.index.json", "{\"weight_map\": ");
  EXPECT_ERROR(SafeTensorsArchive::open(dir_.str()).status(), corrupt, "model.safetensors.index.json");
  write_bytes(dir_ / "model.safetensors.index.json", "{\"metadata\": {}}");
  EXPECT_ERROR(SafeTensorsArchive::open(dir_.str()).status(), corrupt, "weight_map");
  write_index(R"({"embed.weight": 7})");
  EXPECT_ERROR(SafeTensorsArchive::open(dir_.str()).status(), corrupt, "embed.weight");
}

TEST_F(ShardedTest, FolderWithoutIndexOrModel) {
  // Two shards and no index: ambiguous.
  EXPECT_ERROR(SafeTensorsArchive::open(dir_.str()).status(), not_found, "model.safetensors.index.json");
  TempDir empty;
  EXPECT_ERROR(SafeTensorsArchive::open(empty.str()).status(), not_found, "model.safetensors");
  EXPECT_ERROR(SafeTensorsArchive::open(empty / "nope.safetensors").status(), not_found, "nope.safetensors");
}

TEST(SafeTensorsOpen, FolderWithSingleFile) {
  TempDir dir;
  float x[3] = {1, 2, 3};
  ASSERT_TRUE(write_safetensors(dir / "model.safetensors", {{"w", DType::f32, Shape{3}, x}}).ok());
  auto a = SafeTensorsArchive::open(dir.str());
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(reinterpret_cast<const float*>(a->find("w")->data)[2], 3.0f);
}

TEST(SafeTensorsExpect, MissingTensorAndWrongShape) {
  TempDir dir;
  float x[6] = {};
  ASSERT_TRUE(write_safetensors(dir / "model.safetensors", {{"w", DType::f32, Shape{2, 3}, x}}).ok());
  auto a = SafeTensorsArchive::open(dir / "model.safetensors");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->expect("w", Shape{2, 3}).ok());
  EXPECT_ERROR(a->expect("model.layers.0.mlp.up_proj.weight", Shape{2, 3}), not_found,
               "\"model.layers.0.mlp.up_proj.weight\"", "model.safetensors", "right model folder");
  EXPECT_ERROR(a->expect("w", Shape{3, 2}), corrupt, "\"w\"", "[2, 3]", "[3, 2]", "model.safetensors");
  EXPECT_ERROR(a->expect("w", Shape{6}), corrupt, "[6]");
}

// ---- header validation, one test per failure ----

TEST(SafeTensorsValidate, TooShort) {
  EXPECT_ERROR(validate(""), corrupt, "x.safetensors", "0 bytes");
  EXPECT_ERROR(validate("abcde"), corrupt, "x.safetensors", "5 bytes");
  TempDir dir;
  write_bytes(dir / "empty.safetensors", "");
  EXPECT_ERROR(SafeTensorsArchive::open(dir / "empty.safetensors").status(), corrupt, "empty.safetensors");
}

TEST(SafeTensorsValidate, HeaderLengthBeyondFileOrAbsurd) {
  std::string f = make_file("{}");
  f[0] = char(100);  // claims 100 bytes of JSON, file has 10
  EXPECT_ERROR(validate(f), corrupt, "x.safetensors", "100", "truncated");
  std::string g = make_file("{}");
  g[5] = 1;  // 2^40 bytes
  EXPECT_ERROR(validate(g), corrupt, "limit");
  std::string h(16, '\xff');
  EXPECT_ERROR(validate(h), corrupt, "limit");
}

TEST(SafeTensorsValidate, BadJson) {
  EXPECT_ERROR(validate(make_file("{\"a\": ")), corrupt, "x.safetensors", "not valid JSON");
  EXPECT_ERROR(validate(make_file("")), corrupt, "not valid JSON");
  EXPECT_ERROR(validate(make_file("[1, 2]")), corrupt, "array", "expected an object");
  EXPECT_ERROR(validate(make_file(std::string(1000, '[') + std::string(1000, ']'))), corrupt, "nests");
  EXPECT_ERROR(validate(make_file(R"({"w": 5})")), corrupt, "\"w\"", "expected an object");
}

TEST(SafeTensorsValidate, Dtype) {
  EXPECT_ERROR(validate(make_file(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4)), corrupt, "\"w\"",
               "dtype", "BF16");
  EXPECT_ERROR(validate(make_file(R"({"w": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", 4)),
               corrupt, "\"w\"", "dtype");
  EXPECT_ERROR(validate(make_file(R"({"w": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}})", 4)),
               corrupt, "\"w\"", "\"F33\"", "F32, F16, BF16");
  EXPECT_ERROR(validate(make_file(R"({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", 1)),
               unsupported, "\"w\"", "F8_E4M3", "BF16");
}

TEST(SafeTensorsValidate, Shape) {
  for (const char* shape : {"[-1]", "[1.5]", "[\"2\"]", "5", "[null]", "[1e30]", "[18446744073709551615]"}) {
    EXPECT_ERROR(validate(make_file(
                     cat(R"({"w": {"dtype": "F32", "shape": )", shape, R"(, "data_offsets": [0, 4]}})"), 4)),
                 corrupt, "\"w\"", "shape");
  }
  EXPECT_ERROR(validate(make_file(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4)), corrupt,
               "shape");
  EXPECT_ERROR(
      validate(make_file(R"({"w": {"dtype": "U8", "shape": [1,1,1,1,1], "data_offsets": [0, 1]}})", 1)),
      unsupported, "\"w\"", "dimensions");
  // Products that overflow 64 bits must be caught, not wrap to a small size.
  EXPECT_ERROR(
      validate(make_file(
          R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 0]}})")),
      corrupt, "\"w\"", "2^64");
  EXPECT_ERROR(validate(make_file(
                   R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})")),
               corrupt, "\"w\"", "2^64");
}

TEST(SafeTensorsValidate, DataOffsets) {
  for (const char* off : {"[4, 0]", "[0]", "[0, 4, 8]", "[-4, 0]", "[0, 4.0]", "{\"a\": 1}", "null"}) {
    EXPECT_ERROR(
        validate(make_file(cat(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": )", off, "}}"), 4)),
        corrupt, "\"w\"", "data_offsets");
  }
  EXPECT_ERROR(validate(make_file(R"({"w": {"dtype": "F32", "shape": [1]}})", 4)), corrupt, "\"w\"",
               "data_offsets");
}

TEST(SafeTensorsValidate, SizeMismatch) {
  EXPECT_ERROR(validate(make_file(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]}})", 16)),
               corrupt, "\"w\"", "[2, 2]", "16 bytes", "8 bytes");
  // Wrong dtype shows up the same way (BF16 data declared F32).
  EXPECT_ERROR(validate(make_file(R"({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 16]}})", 16)),
               corrupt, "\"w\"", "BF16");
}

TEST(SafeTensorsValidate, Truncated) {
  TempDir dir;
  std::vector<float> x(1000, 1.0f);
  const std::string p = dir / "model.safetensors";
  ASSERT_TRUE(
      write_safetensors(p, {{"a", DType::f32, Shape{500}, x.data()},
                            {"model.layers.3.mlp.up_proj.weight", DType::f32, Shape{500}, x.data() + 500}})
          .ok());
  std::string bytes = read_bytes(p);
  const size_t full = bytes.size();
  bytes.resize(full - 10);
  write_bytes(p, bytes);
  EXPECT_ERROR(SafeTensorsArchive::open(p).status(), corrupt, "model.safetensors",
               "\"model.layers.3.mlp.up_proj.weight\"", cat("ends at byte ", commas(full)).c_str(),
               cat("the file has ", commas(full - 10), " bytes").c_str(), "truncated download");
}

TEST(SafeTensorsValidate, OverlappingSpans) {
  EXPECT_ERROR(validate(make_file(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                                  16)),
               corrupt, "\"a\"", "\"b\"", "overlap");
  // Contained span, listed first in the header.
  EXPECT_ERROR(validate(make_file(R"({"inner": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]},
                                      "outer": {"dtype": "U8", "shape": [16], "data_offsets": [0, 16]}})",
                                  16)),
               corrupt, "\"inner\"", "\"outer\"", "overlap");
  // Adjacent spans and empty tensors are fine.
  std::vector<SafeTensor> ts;
  EXPECT_TRUE(validate(make_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                     "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                                     "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                                 16),
                       &ts)
                  .ok());
  EXPECT_EQ(ts.size(), 3u);
}

TEST(SafeTensorsValidate, Metadata) {
  std::map<std::string, std::string> md;
  EXPECT_TRUE(validate(make_file(R"({"__metadata__": {"format": "pt"}})"), nullptr, &md).ok());
  EXPECT_EQ(md.at("format"), "pt");
  EXPECT_ERROR(validate(make_file(R"({"__metadata__": {"format": 1}})")), corrupt, "__metadata__", "format");
  EXPECT_ERROR(validate(make_file(R"({"__metadata__": [1]})")), corrupt, "__metadata__");
}

// Random corruptions of a valid file never crash, and whatever validates has every tensor inside the file.
TEST(SafeTensorsValidate, MutatedFilesNeverCrash) {
  TempDir dir;
  std::vector<uint16_t> x(64, 0x3f80);
  const std::string p = dir / "m.safetensors";
  ASSERT_TRUE(write_safetensors(
                  p, {{"a", DType::bf16, Shape{4, 8}, x.data()}, {"b", DType::bf16, Shape{32}, x.data()}},
                  {{"format", "pt"}})
                  .ok());
  const std::string good = read_bytes(p);
  std::mt19937 rng(7);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = good;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng() % b.size();
      b[at] = (rng() % 2) ? char(rng()) : "0123456789[]{},\"-"[rng() % 17];
    }
    if (rng() % 8 == 0) b.resize(rng() % b.size());
    std::vector<SafeTensor> ts;
    const Status st = validate(b, &ts);
    if (!st.ok()) {
      EXPECT_FALSE(st.message().empty());
      continue;
    }
    ++accepted;
    const auto* lo = reinterpret_cast<const uint8_t*>(b.data());
    for (const auto& t : ts) {
      EXPECT_GE(t.data, lo);
      EXPECT_LE(t.data + t.nbytes, lo + b.size());
    }
  }
  EXPECT_GT(accepted, 0);  // some mutations (in the data section) stay valid
}

}  // namespace
}  // namespace tailor

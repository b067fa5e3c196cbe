// safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the data section.
// Format reference: https://github.com/huggingface/safetensors (README, "Format").
// Every number in the header is checked before it becomes a pointer: the JSON is untrusted input.
#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string_view>

#include "core/json.h"

namespace tailor {

namespace {

namespace fs = std::filesystem;

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";
// safetensors dtype names tailor does not read (valid in the format, so "unsupported" rather than "corrupt").
constexpr std::string_view kOtherStDtypes[] = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2",
                                               "F4",      "U16",     "U32",     "U64",     "C64"};

// 9437200 -> "9,437,200": byte offsets in messages are easier to compare with `ls -l` when grouped.
std::string grouped(uint64_t v) {
  const std::string d = std::to_string(v);
  std::string s;
  s.reserve(d.size() + d.size() / 3);
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(d[i]);
  }
  return s;
}

std::string valid_dtype_list() {
  std::string s;
  for (int i = 0; i <= int(DType::q6_k); ++i) {
    const char* n = dtype_info(DType(i)).st_name;
    if (!n) continue;
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s;
}

// Maximum nesting depth of a JSON text, ignoring brackets inside strings. A safetensors header nests 3
// deep; rejecting deep nesting up front keeps a hostile "[[[[..." header from costing gigabytes to parse.
int json_depth(std::string_view s, int limit) {
  int depth = 0, max_depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_str) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"')
      in_str = true;
    else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) return max_depth;
    } else if (c == '}' || c == ']')
      --depth;
  }
  return max_depth;
}

// A JSON integer >= 0 (floats, negatives and integers beyond u64 are rejected).
bool json_u64(const Json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = uint64_t(j.get<int64_t>());
    return true;
  }
  return false;
}

struct Span {
  uint64_t begin, end;
  size_t tensor;  // index into the output vector
};

Status parse_entry(const std::string& file, const std::string& name, const Json& e, SafeTensor* t,
                   uint64_t* begin, uint64_t* end) {
  const std::string where = cat(file, ": tensor \"", name, "\": ");
  if (!e.is_object())
    return corrupt(cat(where, "header entry is a JSON ", json_type_name(e),
                       ", expected an object {\"dtype\", \"shape\", \"data_offsets\"} (corrupt header)"));
  // dtype
  auto it = e.find("dtype");
  if (it == e.end() || !it->is_string())
    return corrupt(cat(where, it == e.end() ? "has no \"dtype\"" : "\"dtype\" is not a string",
                       " (valid dtypes: ", valid_dtype_list(), "; corrupt header)"));
  const std::string dt = it->get<std::string>();
  auto dtype = dtype_from_safetensors(dt);
  if (!dtype) {
    const bool known =
        std::find(std::begin(kOtherStDtypes), std::end(kOtherStDtypes), dt) != std::end(kOtherStDtypes);
    const std::string msg =
        cat(where, "dtype \"", dt, "\" is ", known ? "not supported by tailor" : "unknown",
            "; valid dtypes: ", valid_dtype_list(),
            known ? " (convert the weights, e.g. to BF16)" : " (corrupt header?)");
    return known ? unsupported(msg) : corrupt(msg);
  }
  t->dtype = *dtype;
  // shape
  it = e.find("shape");
  if (it == e.end() || !it->is_array())
    return corrupt(cat(where, it == e.end() ? "has no \"shape\"" : "\"shape\" is not an array",
                       " (expected a list of non-negative integers; corrupt header)"));
  if (it->size() > size_t(kMaxDims))
    return unsupported(cat(where, "has ", it->size(), " dimensions; tailor handles at most ", kMaxDims));
  uint64_t numel = 1;
  bool overflow = false;
  t->shape = Shape();
  for (const Json& d : *it) {
    uint64_t v = 0;
    if (!json_u64(d, &v) || v > uint64_t(INT64_MAX))
      return corrupt(cat(where, "shape ", it->dump(), " holds ", d.dump(),
                         ", expected non-negative integers (corrupt header)"));
    t->shape.dims[t->shape.rank++] = int64_t(v);
    // Shape::numel() is int64: every partial product must fit, not just the final one.
    overflow |= __builtin_mul_overflow(numel, v, &numel) || numel > uint64_t(INT64_MAX);
  }
  // data_offsets
  it = e.find("data_offsets");
  uint64_t b = 0, en = 0;
  if (it == e.end() || !it->is_array() || it->size() != 2 || !json_u64((*it)[0], &b) ||
      !json_u64((*it)[1], &en))
    return corrupt(
        cat(where,
            it == e.end() ? std::string("has no \"data_offsets\"") : cat("\"data_offsets\" is ", it->dump()),
            ", expected [begin, end] with non-negative integers (corrupt header)"));
  if (b > en) return corrupt(cat(where, "data_offsets [", b, ", ", en, "] has begin > end (corrupt header)"));
  const uint64_t span = en - b;
  uint64_t nbytes = 0;
  const auto& info = dtype_info(t->dtype);
  if (!overflow)
    overflow = __builtin_mul_overflow(numel / info.block_elems, uint64_t(info.block_bytes), &nbytes);
  if (overflow || nbytes != span)
    return corrupt(cat(where, "shape ", t->shape.str(), " x ", dt, " needs ",
                       overflow ? std::string("more than 2^64") : grouped(nbytes),
                       " bytes but data_offsets [", b, ", ", en, "] span ", grouped(span),
                       " bytes (corrupt header or wrong dtype)"));
  t->name = name;
  t->nbytes = nbytes;
  *begin = b;
  *end = en;
  return {};
}

// Joins file names for "not found in a, b, c".
std::string join_files(const std::vector<std::shared_ptr<MappedFile>>& files) {
  std::string s;
  for (size_t i = 0; i < files.size(); ++i) {
    if (i == 4) return cat(s, " and ", files.size() - 4, " more");
    if (i) s += ", ";
    s += files[i]->path();
  }
  return s.empty() ? "(no files)" : s;
}

}  // namespace

Status SafeTensorsArchive::validate_header(const uint8_t* data, uint64_t file_size,
                                           const std::string& file_name, std::vector<SafeTensor>* out) {
  return validate_header(data, file_size, file_name, out, nullptr);
}

namespace {
Status validate_header_impl(const uint8_t* data, uint64_t file_size, const std::string& f,
                            std::vector<SafeTensor>* out, std::map<std::string, std::string>* metadata) {
  constexpr uint64_t kMaxHeaderBytes = SafeTensorsArchive::kMaxHeaderBytes;
  if (out) out->clear();
  if (metadata) metadata->clear();
  if (file_size < 8 || data == nullptr)
    return corrupt(
        cat(f, ": file has ", file_size,
            " bytes, too short for the 8-byte safetensors header length (empty or truncated file?)"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];  // little-endian regardless of host
  if (header_len > kMaxHeaderBytes)
    return corrupt(cat(f, ": header length ", grouped(header_len), " bytes exceeds the ",
                       grouped(kMaxHeaderBytes), "-byte limit (not a safetensors file?)"));
  if (header_len > file_size - 8)
    return corrupt(cat(f, ": header says its JSON is ", grouped(header_len), " bytes but the file has only ",
                       grouped(file_size), " bytes (truncated download?)"));
  const std::string_view text(reinterpret_cast<const char*>(data + 8), size_t(header_len));
  if (json_depth(text, 8) > 8)
    return corrupt(cat(f, ": header JSON nests deeper than any safetensors header (corrupt file)"));
  Json header;
  try {
    header = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/true);
  } catch (const Json::parse_error& e) {
    return corrupt(cat(f, ": header is not valid JSON (byte ", e.byte, " of the header): ", e.what(),
                       " (corrupt or not a safetensors file)"));
  } catch (const std::exception& e) {
    return corrupt(cat(f, ": header is not valid JSON: ", e.what()));
  }
  if (!header.is_object())
    return corrupt(cat(f, ": header is a JSON ", json_type_name(header),
                       ", expected an object of tensors (not a safetensors file?)"));

  const uint64_t data_begin = 8 + header_len;
  const uint64_t data_size = file_size - data_begin;
  std::vector<SafeTensor> tensors;
  std::vector<Span> spans;
  tensors.reserve(header.size());
  spans.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it->is_object())
        return corrupt(cat(f, ": \"__metadata__\" is a JSON ", json_type_name(*it),
                           ", expected an object of string values (corrupt header)"));
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          return corrupt(cat(f, ": \"__metadata__\" entry \"", m.key(), "\" is a JSON ", json_type_name(*m),
                             ", expected a string (corrupt header)"));
        if (metadata) (*metadata)[m.key()] = m->get<std::string>();
      }
      continue;
    }
    SafeTensor t;
    uint64_t b = 0, e = 0;
    TAILOR_RETURN_IF_ERROR(parse_entry(f, name, *it, &t, &b, &e));
    if (e > data_size) {
      // Absolute offsets, as `ls -l` shows them; the sum cannot overflow unless `e` is absurd.
      const std::string end_at = e <= UINT64_MAX - data_begin ? grouped(data_begin + e) : cat("2^64+");
      return corrupt(cat(f, ": tensor \"", name, "\" ends at byte ", end_at, " but the file has ",
                         grouped(file_size), " bytes (truncated download?)"));
    }
    spans.push_back({b, e, tensors.size()});
    tensors.push_back(std::move(t));
  }

  // Overlap: sort non-empty spans by begin; each must start at or after the furthest end so far.
  std::vector<Span> sorted;
  sorted.reserve(spans.size());
  for (const Span& s : spans)
    if (s.end > s.begin) sorted.push_back(s);
  std::sort(sorted.begin(), sorted.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const Span& prev = sorted[i - 1];
    const Span& cur = sorted[i];
    if (cur.begin < prev.end)
      return corrupt(cat(f, ": tensors \"", tensors[prev.tensor].name, "\" [", prev.begin, ", ", prev.end,
                         ") and \"", tensors[cur.tensor].name, "\" [", cur.begin, ", ", cur.end,
                         ") overlap in the data section (corrupt file; re-download or re-export it)"));
  }
  // Pointers only now that every span is known to lie inside the file.
  for (const Span& s : spans) tensors[s.tensor].data = data + data_begin + s.begin;
  if (out) *out = std::move(tensors);
  return {};
}
}  // namespace

Status SafeTensorsArchive::validate_header(const uint8_t* data, uint64_t file_size,
                                           const std::string& file_name, std::vector<SafeTensor>* out,
                                           std::map<std::string, std::string>* metadata) {
  // nlohmann throws (e.g. dump() of odd values, bad_alloc on a huge header): nothing escapes this module.
  try {
    return validate_header_impl(data, file_size, file_name, out, metadata);
  } catch (const std::bad_alloc&) {
    return out_of_memory(cat(file_name, ": out of memory while parsing the safetensors header"));
  } catch (const std::exception& e) {
    return corrupt(cat(file_name, ": invalid safetensors header: ", e.what()));
  }
}

const SafeTensor* SafeTensorsArchive::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

uint64_t SafeTensorsArchive::total_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors_) n += t.nbytes;
  return n;
}

Status SafeTensorsArchive::expect(const std::string& name, const Shape& shape) const {
  const SafeTensor* t = find(name);
  if (!t)
    return not_found(cat("tensor \"", name, "\" not found in ", join_files(files_),
                         " (is this the right model folder / architecture?)"));
  if (!(t->shape == shape))
    return corrupt(cat(files_[size_t(t->file_index)]->path(), ": tensor \"", name, "\" has shape ",
                       t->shape.str(), " but the model config expects ", shape.str(),
                       " (config.json does not match these weights: wrong folder or edited config?)"));
  return {};
}

namespace {

// Opens and validates one shard, appending its tensors.
Status add_shard(const std::string& path, int file_index, std::vector<std::shared_ptr<MappedFile>>* files,
                 std::vector<SafeTensor>* tensors, std::map<std::string, size_t>* index,
                 std::map<std::string, std::string>* metadata) {
  TAILOR_ASSIGN_OR_RETURN(auto mf, MappedFile::open(path));
  std::vector<SafeTensor> ts;
  std::map<std::string, std::string> md;
  TAILOR_RETURN_IF_ERROR(SafeTensorsArchive::validate_header(mf->data(), mf->size(), path, &ts, &md));
  for (auto& t : ts) {
    t.file_index = file_index;
    auto [it, inserted] = index->emplace(t.name, tensors->size());
    if (!inserted)
      return corrupt(cat("tensor \"", t.name, "\" appears in both ",
                         (*files)[size_t((*tensors)[it->second].file_index)]->path(), " and ", path,
                         " (mixed shards from two exports? remove the stray file)"));
    tensors->push_back(std::move(t));
  }
  for (auto& [k, v] : md) metadata->emplace(k, v);
  files->push_back(std::move(mf));
  return {};
}

}  // namespace

Result<SafeTensorsArchive> SafeTensorsArchive::open(const std::string& path) {
  try {
    return open_impl(path);
  } catch (const std::bad_alloc&) {
    return out_of_memory(cat(path, ": out of memory while opening safetensors"));
  } catch (const std::exception& e) {
    return corrupt(cat(path, ": cannot open safetensors: ", e.what()));
  }
}

Result<SafeTensorsArchive> SafeTensorsArchive::open_impl(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (is_directory(path)) {
    const fs::path dir(path);
    if (file_exists((dir / kIndexName).string())) {
      file = (dir / kIndexName).string();
    } else if (file_exists((dir / kSingleName).string())) {
      file = (dir / kSingleName).string();
    } else {
      // Some exports name the single file differently (e.g. "adapter.safetensors"): accept exactly one.
      std::vector<std::string> found;
      for (fs::directory_iterator di(dir, ec), end; !ec && di != end; di.increment(ec))
        if (di->path().extension() == ".safetensors") found.push_back(di->path().string());
      if (ec) return io_error(cat(path, ": cannot list folder: ", ec.message()));
      if (found.size() != 1)
        return not_found(cat(path, ": folder has neither ", kSingleName, " nor ", kIndexName,
                             found.empty()
                                 ? std::string(" (is this a Hugging Face model folder?)")
                                 : cat(" and holds ", found.size(),
                                       " .safetensors files (add the index json or pass one file)")));
      file = found[0];
    }
  } else if (!file_exists(path)) {
    return not_found(cat(path, ": no such file or folder"));
  }

  SafeTensorsArchive a;
  const bool is_index = file.size() >= 5 && file.compare(file.size() - 5, 5, ".json") == 0;
  if (!is_index) {
    TAILOR_RETURN_IF_ERROR(add_shard(file, 0, &a.files_, &a.tensors_, &a.index_, &a.metadata_));
    return a;
  }

  // Sharded: {"metadata": {...}, "weight_map": {"tensor name": "shard file name", ...}}.
  TAILOR_ASSIGN_OR_RETURN(std::string text, read_file(file));
  Json idx;
  try {
    idx = Json::parse(text);
  } catch (const std::exception& e) {
    return corrupt(cat(file, ": not valid JSON: ", e.what(), " (re-download the index file)"));
  }
  if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
    return corrupt(
        cat(file, ": expected an object with a \"weight_map\" object (tensor name -> shard file)"));
  const Json& wm = idx["weight_map"];
  const fs::path dir = fs::path(file).parent_path();
  std::vector<std::string> shards;  // in order of first mention
  std::map<std::string, int> shard_no;
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    if (!it->is_string())
      return corrupt(cat(file, ": weight_map entry \"", it.key(), "\" is a JSON ", json_type_name(*it),
                         ", expected a shard file name"));
    const std::string s = it->get<std::string>();
    if (shard_no.emplace(s, int(shards.size())).second) shards.push_back(s);
  }
  if (shards.empty()) return corrupt(cat(file, ": weight_map is empty (incomplete index file?)"));
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string sp = (dir / shards[i]).string();
    if (!file_exists(sp) || is_directory(sp)) {
      std::string who;
      for (auto it = wm.begin(); it != wm.end(); ++it)
        if (it->get<std::string>() == shards[i]) {
          who = it.key();
          break;
        }
      return not_found(cat(file, ": shard \"", shards[i], "\" (holding tensor \"", who,
                           "\") is missing from ", dir.string().empty() ? "." : dir.string(),
                           " (incomplete download?)"));
    }
    TAILOR_RETURN_IF_ERROR(add_shard(sp, int(i), &a.files_, &a.tensors_, &a.index_, &a.metadata_));
  }
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    const SafeTensor* t = a.find(it.key());
    const int want = shard_no[it->get<std::string>()];
    if (!t || t->file_index != want)
      return corrupt(cat(file, ": weight_map puts tensor \"", it.key(), "\" in ", it->get<std::string>(),
                         " but that shard does not hold it",
                         t ? cat(" (found in ", a.files_[size_t(t->file_index)]->path(), ")") : std::string(),
                         " (index and shards are from different exports? re-download both)"));
  }
  return a;
}

namespace {
Status write_impl(const std::string& path, const std::vector<TensorToWrite>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  // Layout: no holes between tensors (the reference implementation rejects holes), so alignment comes from
  // order: a stable sort by element size, largest first, keeps every tensor aligned to its element size
  // given an 8-byte-aligned data section.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_info(tensors[a].dtype).block_bytes > dtype_info(tensors[b].dtype).block_bytes;
  });
  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson md = OrderedJson::object();
    for (const auto& [k, v] : metadata) md[k] = v;
    header["__metadata__"] = std::move(md);
  }
  std::set<std::string> names;
  std::vector<uint64_t> sizes(tensors.size());
  uint64_t off = 0;
  for (size_t i : order) {
    const TensorToWrite& t = tensors[i];
    const DTypeInfo& info = dtype_info(t.dtype);
    if (!info.st_name || info.block_elems != 1)
      return invalid_argument(cat(path, ": tensor \"", t.name, "\" has dtype ", info.name,
                                  ", which safetensors cannot store (use one of ", valid_dtype_list(), ")"));
    if (t.name == "__metadata__" || !names.insert(t.name).second)
      return invalid_argument(cat(path, ": tensor name \"", t.name, "\" is reserved or used twice"));
    OrderedJson shape = OrderedJson::array();
    for (int d = 0; d < t.shape.rank; ++d) {
      if (t.shape[d] < 0)
        return invalid_argument(cat(path, ": tensor \"", t.name, "\" has negative shape ", t.shape.str()));
      shape.push_back(t.shape[d]);
    }
    sizes[i] = uint64_t(t.shape.numel()) * info.block_bytes;
    if (sizes[i] && !t.data) return invalid_argument(cat(path, ": tensor \"", t.name, "\" has no data"));
    header[t.name] = {{"dtype", info.st_name}, {"shape", shape}, {"data_offsets", {off, off + sizes[i]}}};
    off += sizes[i];
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // data section starts 8-byte aligned

  // Write to a temporary name and rename, so an interrupted write never leaves a plausible-looking file.
  const std::string tmp = path + ".tmp";
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  if (!fp) return io_error(cat(tmp, ": cannot open for writing"));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(json.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, fp) == 8 && std::fwrite(json.data(), 1, json.size(), fp) == json.size();
  for (size_t i : order) {
    if (!ok) break;
    if (sizes[i]) ok = std::fwrite(tensors[i].data, 1, sizes[i], fp) == sizes[i];
  }
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return io_error(cat(path, ": write failed (disk full?)"));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return io_error(cat(path, ": cannot rename from ", tmp, ": ", ec.message()));
  }
  return {};
}

}  // namespace

Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  try {
    return write_impl(path, tensors, metadata);
  } catch (const std::exception& e) {  // e.g. a tensor name that is not valid UTF-8
    return invalid_argument(cat(path, ": cannot write safetensors: ", e.what()));
  }
}

}  // namespace tailor

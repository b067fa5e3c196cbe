// safetensors reader: single file or sharded (model.safetensors.index.json), zero-copy over mmap.
// Everything is validated before any tensor is handed out: header length, JSON, dtype names,
// shape x dtype size == byte span, spans inside the file and not overlapping.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mmap.h"
#include "core/status.h"
#include "core/tensor.h"

namespace tailor {

struct SafeTensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  const uint8_t* data = nullptr;  // inside the mmap of `file`
  uint64_t nbytes = 0;
  int file_index = 0;  // which shard
  TensorView view() const { return TensorView(const_cast<uint8_t*>(data), dtype, shape); }
};

class SafeTensorsArchive {
 public:
  // `path` is a .safetensors file, a model.safetensors.index.json, or a folder holding either.
  static Result<SafeTensorsArchive> open(const std::string& path);
  // Parses just a header (for the fuzzer and tests): `file_size` is the size of the whole file.
  static Status validate_header(const uint8_t* data, uint64_t file_size, const std::string& file_name,
                                std::vector<SafeTensor>* out);
  // Same, also returning the "__metadata__" string map (may be null).
  static Status validate_header(const uint8_t* data, uint64_t file_size, const std::string& file_name,
                                std::vector<SafeTensor>* out, std::map<std::string, std::string>* metadata);
  // Largest header (JSON) accepted; real headers are a few MB at most.
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

  const SafeTensor* find(const std::string& name) const;
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const std::vector<std::shared_ptr<MappedFile>>& files() const { return files_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  uint64_t total_bytes() const;

  // Checks that `name` exists with `shape`; the error names the tensor, the expected and the found shape.
  Status expect(const std::string& name, const Shape& shape) const;

 private:
  static Result<SafeTensorsArchive> open_impl(const std::string& path);
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<SafeTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors to one .safetensors file (used by gen-model and tests). Data pointers must hold nbytes.
struct TensorToWrite {
  std::string name;
  DType dtype;
  Shape shape;
  const void* data;
};
Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace tailor

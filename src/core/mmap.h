// Read-only memory-mapped files: weights are used in place (zero-copy) whenever the Plan keeps their dtype.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace tailor {

class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Hints the kernel to read ahead [offset, offset+len) (used before a sequential pass over weights).
  void advise_willneed(uint64_t offset, uint64_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Reads a whole (small) file into a string. Errors name the path.
Result<std::string> read_file(const std::string& path);
Status write_file(const std::string& path, const std::string& data);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

}  // namespace tailor

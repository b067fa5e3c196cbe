#include "core/mmap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tailor {

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return not_found(cat(path, ": no such file"));
    return io_error(cat(path, ": cannot open: ", std::strerror(e)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return io_error(cat(path, ": cannot stat: ", std::strerror(e)));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return invalid_argument(cat(path, ": is a directory, expected a file"));
  }
  auto mf = std::shared_ptr<MappedFile>(new MappedFile());
  mf->path_ = path;
  mf->size_ = uint64_t(st.st_size);
  if (mf->size_ > 0) {
    void* p = ::mmap(nullptr, mf->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return io_error(cat(path, ": mmap failed: ", std::strerror(e)));
    }
    mf->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return mf;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::advise_willneed(uint64_t offset, uint64_t len) const {
  if (!data_ || offset >= size_) return;
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  len = std::min(len + (offset - start), size_ - start);
  ::madvise(const_cast<uint8_t*>(data_) + start, len, MADV_WILLNEED);
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (!file_exists(path)) return not_found(cat(path, ": no such file"));
    return io_error(cat(path, ": cannot open for reading"));
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Status write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return io_error(cat(path, ": cannot open for writing"));
  f.write(data.data(), std::streamsize(data.size()));
  if (!f) return io_error(cat(path, ": write failed (disk full?)"));
  return {};
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace tailor

// libFuzzer target: the input bytes are a whole .safetensors file. validate_header must return a Status for
// any input, and every tensor it accepts must lie inside the input with the size its shape and dtype imply.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tailor;
  std::vector<SafeTensor> tensors;
  std::map<std::string, std::string> metadata;
  const Status st = SafeTensorsArchive::validate_header(data, size, "fuzz.safetensors", &tensors, &metadata);
  if (!st.ok()) {
    if (st.message().empty()) std::abort();  // every failure must explain itself
    return 0;
  }
  for (const SafeTensor& t : tensors) {
    if (t.data < data || t.nbytes > size || t.data + t.nbytes > data + size) std::abort();
    if (dtype_row_bytes(t.dtype, uint64_t(t.shape.numel())) != t.nbytes) std::abort();
    // Touch the bytes so ASan checks the span really is readable.
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < t.nbytes; ++i) sink = sink ^ t.data[i];
    (void)sink;
  }
  return 0;
}

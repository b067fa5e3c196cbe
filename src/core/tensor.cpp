#include "core/tensor.h"

#include <sstream>

namespace tailor {

std::string Shape::str() const {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < rank; ++i) os << (i ? ", " : "") << dims[i];
  os << "]";
  return os.str();
}

}  // namespace tailor

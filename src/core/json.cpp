#include "core/json.h"

#include "core/mmap.h"

namespace tailor {

namespace {
template <class J>
Result<J> parse_impl(std::string_view text, const std::string& what) {
  try {
    return J::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::parse_error& e) {
    return invalid_argument(cat(what, ": invalid JSON at byte ", e.byte, ": ", e.what()));
  } catch (const std::exception& e) {
    return invalid_argument(cat(what, ": invalid JSON: ", e.what()));
  }
}
}  // namespace

Result<Json> parse_json(std::string_view text, const std::string& what) {
  return parse_impl<Json>(text, what);
}
Result<OrderedJson> parse_ordered_json(std::string_view text, const std::string& what) {
  return parse_impl<OrderedJson>(text, what);
}

Result<Json> read_json_file(const std::string& path) {
  TAILOR_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_json(text, path);
}

const char* json_type_name(const Json& j) {
  return j.type_name();
}

}  // namespace tailor

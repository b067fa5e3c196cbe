#include "tokenizer/post_processor.h"

#include "tokenizer/json_util.h"

namespace tailor::tok {

namespace {

struct Parts {
  std::vector<int32_t> prefix, suffix;
};

Status template_parts(const Json& j, const std::string& path, Parts& parts) {
  TAILOR_ASSIGN_OR_RETURN(const Json* single, get_array(j, "single", path));
  const Json empty_obj = Json::object();
  auto st = j.find("special_tokens");
  const Json& specials = (st != j.end() && st->is_object()) ? *st : empty_obj;
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const Json& item = (*single)[i];
    const std::string where = cat(path, ".single[", i, "]");
    if (!item.is_object()) return invalid_argument(cat(where, ": expected an object"));
    if (auto s = item.find("Sequence"); s != item.end()) {
      if (seen_sequence)
        return unsupported(cat(where, ": more than one Sequence in a single-sequence template"));
      seen_sequence = true;
      continue;
    }
    auto sp = item.find("SpecialToken");
    if (sp == item.end() || !sp->is_object()) {
      return invalid_argument(cat(where, ": expected {\"SpecialToken\": ...} or {\"Sequence\": ...}"));
    }
    TAILOR_ASSIGN_OR_RETURN(std::string name, get_string(*sp, "id", where + ".SpecialToken"));
    auto def = specials.find(name);
    if (def == specials.end() || !def->is_object()) {
      return invalid_argument(
          cat(where, ": special token \"", name, "\" is not defined in ", path, ".special_tokens"));
    }
    TAILOR_ASSIGN_OR_RETURN(const Json* ids,
                            get_array(*def, "ids", cat(path, ".special_tokens[\"", name, "\"]")));
    for (const Json& id : *ids) {
      if (!id.is_number_integer() || id.get<long long>() < 0 || id.get<long long>() > INT32_MAX) {
        return invalid_argument(
            cat(path, ".special_tokens[\"", name, "\"].ids: expected non-negative integers"));
      }
      (seen_sequence ? parts.suffix : parts.prefix).push_back(int32_t(id.get<long long>()));
    }
  }
  if (!seen_sequence)
    return invalid_argument(cat(path, ".single: the template has no {\"Sequence\": ...} item"));
  return {};
}

// RobertaProcessing / BertProcessing: "cls": [token, id], "sep": [token, id].
Status cls_sep_parts(const Json& j, const std::string& path, Parts& parts) {
  for (const char* key : {"cls", "sep"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
      return invalid_argument(cat(path, ".", key, ": expected [\"token\", id]"));
    }
    long long id = (*it)[1].get<long long>();
    if (id < 0 || id > INT32_MAX) return invalid_argument(cat(path, ".", key, ": id out of range"));
    (std::string(key) == "cls" ? parts.prefix : parts.suffix).push_back(int32_t(id));
  }
  return {};
}

Status collect(const Json& j, const std::string& path, Parts& parts) {
  if (j.is_null()) return {};
  TAILOR_RETURN_IF_ERROR(check_nesting(path));
  TAILOR_ASSIGN_OR_RETURN(std::string type, component_type(j, path));
  if (type == "ByteLevel") return {};
  if (type == "TemplateProcessing") {
    Parts p;
    TAILOR_RETURN_IF_ERROR(template_parts(j, path, p));
    parts.prefix.insert(parts.prefix.begin(), p.prefix.begin(), p.prefix.end());
    parts.suffix.insert(parts.suffix.end(), p.suffix.begin(), p.suffix.end());
    return {};
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    Parts p;
    TAILOR_RETURN_IF_ERROR(cls_sep_parts(j, path, p));
    parts.prefix.insert(parts.prefix.begin(), p.prefix.begin(), p.prefix.end());
    parts.suffix.insert(parts.suffix.end(), p.suffix.begin(), p.suffix.end());
    return {};
  }
  if (type == "Sequence") {
    TAILOR_ASSIGN_OR_RETURN(const Json* arr, get_array(j, "processors", path));
    for (size_t i = 0; i < arr->size(); ++i) {
      TAILOR_RETURN_IF_ERROR(collect((*arr)[i], cat(path, ".processors[", i, "]"), parts));
    }
    return {};
  }
  return unknown_component("post-processor", type, path,
                           "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
}

}  // namespace

Result<std::unique_ptr<PostProcessor>> make_post_processor(const Json& j, const std::string& path) {
  Parts parts;
  TAILOR_RETURN_IF_ERROR(collect(j, path, parts));
  if (parts.prefix.empty() && parts.suffix.empty()) return std::unique_ptr<PostProcessor>();
  return std::make_unique<PostProcessor>(std::move(parts.prefix), std::move(parts.suffix));
}

}  // namespace tailor::tok

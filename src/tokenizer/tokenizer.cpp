// Tokenizer factories (file, text, model folder) and the streaming detokenizer.
#include "tokenizer/tokenizer.h"

#include <exception>

#include "core/json.h"
#include "core/mmap.h"
#include "tokenizer/hf_tokenizer.h"

namespace tailor {

namespace {
// tokenizer_config.json spells a token as "<s>" or {"content": "<s>", ...}; null means "none".
std::optional<std::string> config_token(const Json& cfg, const char* key, bool* present) {
  auto it = cfg.find(key);
  *present = it != cfg.end();
  if (!*present) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}
}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json_text(std::string_view json_text,
                                                             const std::string& name) {
  try {
    auto r = tok::HfTokenizer::load(json_text, name);
    if (!r.ok()) return r.status();
    return std::unique_ptr<Tokenizer>(std::move(r).value());
  } catch (const std::bad_alloc&) {
    return out_of_memory(cat(name, ": out of memory while loading the tokenizer"));
  } catch (const std::exception& e) {
    // nlohmann throws on type mismatches we did not anticipate; report instead of crashing.
    return invalid_argument(cat(name, ": malformed tokenizer.json: ", e.what()));
  }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_file(const std::string& tokenizer_json_path) {
  if (is_directory(tokenizer_json_path)) {
    return invalid_argument(cat(tokenizer_json_path,
                                ": is a folder; pass the tokenizer.json file inside it, or load "
                                "the folder with from_model_dir"));
  }
  if (!file_exists(tokenizer_json_path)) return not_found(cat(tokenizer_json_path, ": no such file"));
  auto mapped = MappedFile::open(tokenizer_json_path);
  if (!mapped.ok()) {
    // Empty files cannot be mapped; read them the ordinary way so the error says what is wrong with the
    // content.
    TAILOR_ASSIGN_OR_RETURN(std::string text, read_file(tokenizer_json_path));
    return from_json_text(text, tokenizer_json_path);
  }
  const auto& f = mapped.value();
  return from_json_text(std::string_view(reinterpret_cast<const char*>(f->data()), size_t(f->size())),
                        tokenizer_json_path);
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_model_dir(const std::string& dir) {
  if (!is_directory(dir))
    return not_found(cat(dir, ": not a folder (expected a model folder with tokenizer.json)"));
  const std::string json_path = dir + "/tokenizer.json";
  if (!file_exists(json_path)) {
    return not_found(
        cat(json_path, ": no such file (tailor needs the Hugging Face tokenizer.json of the model)"));
  }
  TAILOR_ASSIGN_OR_RETURN(auto tok, from_file(json_path));
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (!file_exists(cfg_path)) return tok;
  TAILOR_ASSIGN_OR_RETURN(std::string text, read_file(cfg_path));
  TAILOR_ASSIGN_OR_RETURN(Json cfg, parse_json(text, cfg_path));
  if (!cfg.is_object()) return invalid_argument(cat(cfg_path, ": expected a JSON object"));
  auto* hf = static_cast<tok::HfTokenizer*>(tok.get());
  for (const char* key : {"bos_token", "eos_token"}) {
    bool present = false;
    std::optional<std::string> name = config_token(cfg, key, &present);
    if (!present) continue;
    std::optional<int32_t> id;
    if (name) {
      id = hf->token_to_id(*name);
      if (!id) return invalid_argument(cat(cfg_path, ": ", key, " \"", *name, "\" is not in the vocabulary"));
    }
    if (std::string(key) == "bos_token") {
      hf->set_bos(id);
    } else {
      hf->set_eos(id);
    }
  }
  return tok;
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special_tokens)
    : tok_(tok), skip_special_(skip_special_tokens) {}

std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  if (!tok_.decode_is_local()) return {};  // flush() decodes everything at once
  // The last token that decode() will see decides whether the text is final yet.
  int32_t last = -1;
  for (size_t k = ids_.size(); k-- > 0;) {
    if (skip_special_ && tok_.is_special(ids_[k])) continue;
    last = ids_[k];
    break;
  }
  if (last < 0 || tok_.is_byte_token(last)) return {};
  std::string text = tok_.decode(ids_, skip_special_);
  // A trailing U+FFFD may be an incomplete character that the next token completes.
  if (text.size() <= emitted_ || std::string_view(text).ends_with("\xEF\xBF\xBD")) return {};
  std::string out = text.substr(emitted_);
  // The next window starts at the last token that decode() sees and that has text of its own (an empty one
  // would let a leading Strip reach into the following token).
  size_t keep = ids_.size();
  for (size_t k = ids_.size(); k-- > 0;) {
    if ((skip_special_ && tok_.is_special(ids_[k])) || tok_.token_bytes(ids_[k]).empty()) continue;
    keep = k;
    break;
  }
  if (keep == ids_.size()) keep = 0;
  ids_.erase(ids_.begin(), ids_.begin() + std::ptrdiff_t(keep));
  emitted_ = tok_.decode(ids_, skip_special_).size();
  return out;
}

std::string StreamDecoder::flush() {
  std::string text = tok_.decode(ids_, skip_special_);
  std::string out = text.size() > emitted_ ? text.substr(emitted_) : std::string();
  emitted_ = text.size();
  return out;
}

}  // namespace tailor

#include "tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "tokenizer/json_util.h"
#include "tokenizer/utf8.h"

namespace tailor::tok {

namespace {
// Ids beyond this are refused: a vocabulary this large does not exist, and a hostile file must not make us
// allocate gigabytes for an id table.
constexpr int64_t kMaxId = 1 << 24;
}  // namespace

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::load(std::string_view json_text, const std::string& name) {
  TAILOR_ASSIGN_OR_RETURN(TokenizerJson tj, scan_tokenizer_json(json_text, name));
  std::unique_ptr<HfTokenizer> t(new HfTokenizer());
  t->name_ = name;
  const std::string ctx = name + ": ";
  Json& root = tj.root;

  if (!tj.has_model)
    return invalid_argument(cat(ctx, "missing the \"model\" object (is this a tokenizer.json?)"));
  const Json& model = root["model"];
  TAILOR_ASSIGN_OR_RETURN(std::string model_type, get_string_or(model, "type", "model", "BPE"));
  if (model_type != "BPE") {
    return unsupported(cat(ctx, "model.type \"", model_type, "\" is not supported (supported: BPE)"));
  }
  if (!tj.vocab_is_map)
    return invalid_argument(cat(ctx, "model.vocab: expected an object {\"token\": id, ...}"));
  if (!tj.has_merges && model.contains("merges")) {
    return invalid_argument(
        cat(ctx, "model.merges: expected an array of \"left right\" or [\"left\", \"right\"]"));
  }

  auto get = [&](const char* key) -> const Json& {
    static const Json null_json;
    auto it = root.find(key);
    return it == root.end() ? null_json : *it;
  };
  {
    auto r = make_pre_tokenizer(get("pre_tokenizer"), "pre_tokenizer");
    if (!r.ok()) return r.status().with_context(ctx);
    t->pre_tokenizer_ = std::move(r).value();
  }
  {
    auto r = make_normalizer(get("normalizer"), "normalizer");
    if (!r.ok()) return r.status().with_context(ctx);
    t->normalizer_ = std::move(r).value();
  }
  {
    auto r = make_decoder(get("decoder"), "decoder");
    if (!r.ok()) return r.status().with_context(ctx);
    t->decoder_ = std::move(r).value();
  }
  {
    auto r = make_post_processor(get("post_processor"), "post_processor");
    if (!r.ok()) return r.status().with_context(ctx);
    t->post_processor_ = std::move(r).value();
  }

  BpeConfig cfg;
  int64_t max_id = -1;
  for (auto& [tok, id] : tj.vocab) {
    if (id < 0 || id >= kMaxId) {
      return invalid_argument(
          cat(ctx, "model.vocab[\"", tok, "\"]: id ", id, " is out of range [0, ", kMaxId, ")"));
    }
    max_id = std::max(max_id, id);
  }
  // Holes are allowed (HF allows them) but not a handful of tokens spread over millions of ids: the id tables
  // are dense, and a hostile file must not make us allocate them for nothing.
  if (max_id >= int64_t(4 * tj.vocab.size() + 4096)) {
    return invalid_argument(cat(ctx, "model.vocab: ids are too sparse (largest id ", max_id, " for ",
                                tj.vocab.size(), " tokens)"));
  }
  cfg.vocab.resize(size_t(max_id + 1));
  cfg.present.assign(size_t(max_id + 1), false);
  for (auto& [tok, id] : tj.vocab) {
    cfg.vocab[size_t(id)] = std::move(tok);
    cfg.present[size_t(id)] = true;
  }
  tj.vocab.clear();
  tj.vocab.shrink_to_fit();
  cfg.merges = std::move(tj.merges);
  {
    auto unk = model.find("unk_token");
    if (unk != model.end() && unk->is_string()) {
      cfg.unk_token = unk->get<std::string>();
      cfg.has_unk = true;
    } else if (unk != model.end() && !unk->is_null()) {
      return invalid_argument(cat(ctx, "model.unk_token: expected a string or null"));
    }
    Status st;
    auto flag = [&](const char* key, bool& out) {
      auto r = get_bool_or(model, key, "model", false);
      if (!r.ok())
        st = r.status();
      else
        out = r.value();
    };
    flag("fuse_unk", cfg.fuse_unk);
    flag("byte_fallback", cfg.byte_fallback);
    flag("ignore_merges", cfg.ignore_merges);
    if (!st.ok()) return st.with_context(ctx);
    TAILOR_ASSIGN_OR_RETURN(cfg.continuing_subword_prefix,
                            get_string_or(model, "continuing_subword_prefix", "model", ""));
    TAILOR_ASSIGN_OR_RETURN(cfg.end_of_word_suffix, get_string_or(model, "end_of_word_suffix", "model", ""));
  }
  cfg.byte_level = t->pre_tokenizer_ && t->pre_tokenizer_->is_byte_level();
  {
    auto r = Bpe::create(std::move(cfg));
    if (!r.ok()) return r.status().with_context(ctx);
    t->model_ = std::move(r).value();
  }

  auto at = root.find("added_tokens");
  if (at != root.end() && !at->is_null()) {
    Status st = t->load_added_tokens(*at);
    if (!st.ok()) return st.with_context(ctx);
  }
  t->vocab_size_ = t->model_->size();
  for (auto& a : t->added_) {
    if (a.id >= int64_t(t->model_->size()) + 4 * int64_t(t->added_.size()) + 4096) {
      return invalid_argument(cat(ctx, "added token \"", a.content, "\" has id ", a.id,
                                  ", far beyond the vocabulary (", t->model_->size(), " ids)"));
    }
    t->vocab_size_ = std::max(t->vocab_size_, a.id + 1);
  }
  if (t->post_processor_) {
    for (const auto* list : {&t->post_processor_->prefix(), &t->post_processor_->suffix()}) {
      for (int32_t id : *list) {
        if (id >= t->vocab_size_) {
          return invalid_argument(cat(ctx, "post_processor: special token id ", id,
                                      " is outside the vocabulary (", t->vocab_size_, " ids)"));
        }
      }
    }
  }
  t->added_index_.assign(size_t(t->vocab_size_), -1);
  for (size_t i = 0; i < t->added_.size(); ++i) t->added_index_[size_t(t->added_[i].id)] = int32_t(i);
  t->guess_bos_eos();
  return t;
}

Status HfTokenizer::load_added_tokens(const Json& arr) {
  if (!arr.is_array())
    return invalid_argument(cat("added_tokens: expected an array, got ", json_type_name(arr)));
  for (size_t i = 0; i < arr.size(); ++i) {
    const Json& j = arr[i];
    const std::string path = cat("added_tokens[", i, "]");
    if (!j.is_object()) return invalid_argument(cat(path, ": expected an object"));
    AddedToken a;
    auto id = j.find("id");
    if (id == j.end() || !id->is_number_integer() || id->get<int64_t>() < 0 || id->get<int64_t>() >= kMaxId) {
      return invalid_argument(cat(path, ".id: expected an integer in [0, ", kMaxId, ")"));
    }
    a.id = int32_t(id->get<int64_t>());
    TAILOR_ASSIGN_OR_RETURN(a.content, get_string(j, "content", path));
    if (a.content.empty()) return invalid_argument(cat(path, ".content: an added token cannot be empty"));
    TAILOR_ASSIGN_OR_RETURN(a.special, get_bool_or(j, "special", path, false));
    TAILOR_ASSIGN_OR_RETURN(a.lstrip, get_bool_or(j, "lstrip", path, false));
    TAILOR_ASSIGN_OR_RETURN(a.rstrip, get_bool_or(j, "rstrip", path, false));
    TAILOR_ASSIGN_OR_RETURN(a.single_word, get_bool_or(j, "single_word", path, false));
    TAILOR_ASSIGN_OR_RETURN(a.normalized, get_bool_or(j, "normalized", path, !a.special));
    added_.push_back(std::move(a));
  }
  // HF builds its matchers from the special tokens first, then the others; on identical contents the first
  // wins.
  std::vector<const AddedToken*> raw, norm;
  std::vector<std::string> raw_c, norm_c;
  for (int pass = 0; pass < 2; ++pass) {
    for (const AddedToken& a : added_) {
      if (a.special != (pass == 0)) continue;
      if (!a.normalized) {
        raw.push_back(&a);
        raw_c.push_back(a.content);
      } else {
        std::string c = a.content;
        if (normalizer_) TAILOR_RETURN_IF_ERROR(normalizer_->normalize(c));
        norm.push_back(&a);
        norm_c.push_back(std::move(c));
      }
    }
  }
  raw_matcher_.build(raw, raw_c);
  normalized_matcher_.build(norm, norm_c);
  for (const AddedToken& a : added_) added_by_content_.insert(a.content, a.id);
  return {};
}

void HfTokenizer::guess_bos_eos() {
  auto first_of = [&](std::initializer_list<const char*> names) -> std::optional<int32_t> {
    for (const char* n : names)
      if (auto id = token_to_id(n)) return id;
    return std::nullopt;
  };
  if (post_processor_ && !post_processor_->prefix().empty()) {
    bos_ = post_processor_->prefix()[0];
  } else {
    bos_ = first_of({"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"});
  }
  eos_ = first_of({"<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>", "<|im_end|>"});
}

Result<std::vector<int32_t>> HfTokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
  if (size_t bad = utf8_first_invalid(text); bad != kNpos) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02X", unsigned(static_cast<unsigned char>(text[bad])));
    return invalid_argument(cat("input text is not valid UTF-8: byte ", hex, " at offset ", bad,
                                " (the text must be UTF-8 encoded)"));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> segs;
  raw_matcher_.split(text, !opt.parse_special, segs);
  for (const Segment& s : segs) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    TAILOR_RETURN_IF_ERROR(
        encode_text(text.substr(s.begin, s.end - s.begin), s.begin == 0, !opt.parse_special, ids));
  }
  if (opt.add_special_tokens && post_processor_) post_processor_->apply(ids);
  return ids;
}

Status HfTokenizer::encode_text(std::string_view text, bool at_text_start, bool skip_special,
                                std::vector<int32_t>& ids) const {
  if (text.empty()) return {};
  std::string normalized;
  if (normalizer_) {
    normalized.assign(text);
    TAILOR_RETURN_IF_ERROR(normalizer_->normalize(normalized));
    text = normalized;
  }
  if (normalized_matcher_.empty()) return encode_words(text, at_text_start, ids);
  std::vector<Segment> segs;
  normalized_matcher_.split(text, skip_special, segs);
  for (const Segment& s : segs) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    TAILOR_RETURN_IF_ERROR(
        encode_words(text.substr(s.begin, s.end - s.begin), at_text_start && s.begin == 0, ids));
  }
  return {};
}

Status HfTokenizer::encode_words(std::string_view text, bool at_text_start, std::vector<int32_t>& ids) const {
  if (text.empty()) return {};
  if (!pre_tokenizer_) {
    model_->encode_word(text, ids);
    return {};
  }
  PieceList pl;
  pl.reset(text, at_text_start);
  TAILOR_RETURN_IF_ERROR(pre_tokenizer_->apply(pl));
  for (const Piece& p : pl.pieces) model_->encode_word(pl.text(p), ids);
  return {};
}

const std::string* HfTokenizer::token_string(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return nullptr;
  if (int32_t k = added_index_[size_t(id)]; k >= 0) return &added_[size_t(k)].content;
  if (model_->has(id)) return &model_->token(id);
  return nullptr;
}

std::string HfTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  if (decoder_ && decoder_->is_byte_level()) {
    std::call_once(pieces_once_, [this] {
      byte_pieces_.resize(size_t(vocab_size_));
      for (int32_t i = 0; i < vocab_size_; ++i) {
        if (const std::string* s = token_string(i)) {
          std::string b = *s;
          decoder_->token_bytes(b);
          byte_pieces_[size_t(i)] = std::move(b);
        }
      }
    });
    std::string bytes;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size_ || (skip_special_tokens && is_special(id))) continue;
      bytes += byte_pieces_[size_t(id)];  // unknown ids have an empty piece: dropped, as HF does
    }
    if (utf8_first_invalid(bytes) == kNpos) return bytes;
    return utf8_lossy(bytes);
  }
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* s = token_string(id);
    if (!s) continue;  // unknown ids are dropped, as HF does
    if (skip_special_tokens && is_special(id)) continue;
    toks.push_back(*s);
  }
  std::string out;
  if (decoder_) {
    decoder_->decode_chain(toks);
    for (auto& t : toks) out += t;
  } else {
    for (size_t i = 0; i < toks.size(); ++i) {
      if (i) out += ' ';
      out += toks[i];
    }
  }
  return out;
}

const std::string& HfTokenizer::token_bytes(int32_t id) const {
  static const std::string kEmpty;
  std::call_once(bytes_once_, [this] {
    token_bytes_.resize(size_t(vocab_size_));
    for (int32_t i = 0; i < vocab_size_; ++i) {
      const std::string* s = token_string(i);
      if (!s) continue;
      std::string b = *s;
      if (!is_special(i) && decoder_) decoder_->token_bytes(b);
      token_bytes_[size_t(i)] = std::move(b);
    }
  });
  if (id < 0 || id >= vocab_size_) return kEmpty;
  return token_bytes_[size_t(id)];
}

bool HfTokenizer::is_special(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return false;
  const int32_t k = added_index_[size_t(id)];
  return k >= 0 && added_[size_t(k)].special;
}

bool HfTokenizer::is_byte_token(int32_t id) const {
  if (id < 0 || id >= vocab_size_ || added_index_[size_t(id)] >= 0) return false;
  return model_->byte_of_fallback_id(id) >= 0;
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  const std::string* s = token_string(id);
  return s ? *s : std::string();
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  if (int32_t id = added_by_content_.find(token); id >= 0) return id;
  if (int32_t id = model_->find(token); id >= 0) return id;
  return std::nullopt;
}

}  // namespace tailor::tok

#include "tok_test_util.h"

#include <cstdio>
#include <mutex>

#include "core/mmap.h"

namespace tailor::test {

const Tokenizer* real_tokenizer(const std::string& name, std::string* why) {
  static std::mutex mu;
  static std::map<std::string, std::pair<std::unique_ptr<Tokenizer>, std::string>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it == cache.end()) {
    auto r = Tokenizer::from_file(tokenizer_json_path(name));
    std::pair<std::unique_ptr<Tokenizer>, std::string> entry;
    if (r.ok()) {
      entry.first = std::move(r).value();
    } else {
      entry.second = r.status().message() + " (run scripts/setup.sh to install the npm tokenizers)";
    }
    it = cache.emplace(name, std::move(entry)).first;
  }
  if (why) *why = it->second.second;
  return it->second.first.get();
}

const Json& data_json(const std::string& file, std::string* why) {
  static std::mutex mu;
  static std::map<std::string, std::pair<Json, std::string>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(file);
  if (it == cache.end()) {
    std::pair<Json, std::string> entry;
    auto text = read_file(data_path(file));
    if (!text.ok()) {
      entry.second = text.status().message();
    } else {
      auto j = parse_json(*text, data_path(file));
      if (j.ok()) {
        entry.first = std::move(j).value();
      } else {
        entry.second = j.status().message();
      }
    }
    it = cache.emplace(file, std::move(entry)).first;
  }
  if (why) *why = it->second.second;
  return it->second.first;
}

const std::vector<std::string>& corpus_texts() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> out;
    const Json& c = data_json("corpus.json");
    if (!c.is_object()) return out;
    for (const Json& t : c["texts"]) {
      size_t id = t["id"].get<size_t>();
      if (out.size() <= id) out.resize(id + 1);
      out[id] = t["text"].get<std::string>();
    }
    return out;
  }();
  return texts;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

std::string show(const std::string& s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  if (s.size() > max) out += "...";
  return "\"" + out + "\"";
}

std::vector<int32_t> json_ids(const Json& j) {
  std::vector<int32_t> ids;
  for (const Json& x : j) ids.push_back(x.get<int32_t>());
  return ids;
}

}  // namespace tailor::test

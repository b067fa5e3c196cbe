// Test helpers: render cases with python3-jinja2 (tests/chat_template/jinja_reference.py, configured as
// transformers configures it) and with tailor, so tests compare the two byte for byte.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "tokenizer/chat_template/chat_template.h"

namespace tailor::chat_template_test {

inline constexpr std::time_t kNow = 1700000000;  // strftime_now's clock on both sides

struct Rendered {
  bool ok = false;
  std::string text;  // the output, or the error message
};

inline std::string source_path(const std::string& rel) {
  return std::string(TAILOR_SOURCE_DIR) + "/" + rel;
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline std::string temp_file(const std::string& contents, const std::string& suffix = ".json") {
  std::string tmpl = ::testing::TempDir() + "tailor_ct_XXXXXX" + suffix;
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemps(buf.data(), static_cast<int>(suffix.size()));
  if (fd < 0) return {};
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = write(fd, contents.data() + off, contents.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(fd);
  return std::string(buf.data());
}

// Runs a shell command and returns its stdout (and exit status).
inline std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    *status = -1;
    return out;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// Renders every case with python3-jinja2. Cases are jinja_reference.py's input objects. Fails the current
// test (and returns an empty list) when the reference cannot run: CI must have /usr/bin/python3 with jinja2.
inline std::vector<Rendered> python_render(const OrderedJson& cases) {
  std::string in = temp_file(cases.dump());
  int status = 0;
  std::string out = run_capture(
      "/usr/bin/python3 " + source_path("tests/chat_template/jinja_reference.py") + " < " + in, &status);
  std::remove(in.c_str());
  if (status != 0) {
    ADD_FAILURE() << "the python3-jinja2 reference failed to run (install python3-jinja2): status " << status;
    return {};
  }
  auto parsed = parse_ordered_json(out, "jinja_reference.py output");
  if (!parsed.ok() || !parsed->is_array() || parsed->size() != cases.size()) {
    ADD_FAILURE() << "unexpected output from jinja_reference.py: " << out.substr(0, 500);
    return {};
  }
  std::vector<Rendered> results;
  for (auto& r : *parsed) {
    bool ok = r.value("ok", false);
    results.push_back({ok, ok ? r["out"].get<std::string>() : r["err"].get<std::string>()});
  }
  return results;
}

// Renders one case the way jinja_reference.py does, with tailor's library.
inline Rendered tailor_render(const OrderedJson& c) {
  ChatTemplateOptions opt;
  opt.now = c.contains("now") ? c["now"].get<std::time_t>() : kNow;
  std::string src;
  OrderedJson ctx;
  if (c.contains("model_dir")) {
    auto cfg = load_chat_template_config(c["model_dir"].get<std::string>());
    if (!cfg.ok()) return {false, cfg.status().message()};
    bool tools = c.contains("tools") && !c["tools"].is_null();
    auto sel = cfg->select(tools);
    if (!sel.ok()) return {false, sel.status().message()};
    src = *sel;
    OrderedJson t = tools ? c["tools"] : OrderedJson();
    OrderedJson vars = c.contains("vars") ? c["vars"] : OrderedJson::object();
    ctx = make_chat_context(*cfg, c["messages"], tools ? &t : nullptr,
                            c.value("add_generation_prompt", false), &vars);
  } else {
    src = c["template"].get<std::string>();
    ctx = c["context"];
  }
  auto t = ChatTemplate::parse(src);
  if (!t.ok()) return {false, t.status().message()};
  auto r = t->render(ctx, opt);
  if (!r.ok()) return {false, r.status().message()};
  return {true, *r};
}

inline std::string show(const std::string& s) {
  OrderedJson j = s;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Checks that tailor and python agree on every case: same output bytes, or both fail.
inline void expect_same_as_python(const OrderedJson& cases, const std::string& label) {
  std::vector<Rendered> ref = python_render(cases);
  if (ref.empty()) return;
  int mismatches = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    Rendered ours = tailor_render(cases[i]);
    std::string what =
        cases[i].contains("template") ? cases[i]["template"].get<std::string>() : cases[i].dump();
    if (ref[i].ok != ours.ok || (ref[i].ok && ref[i].text != ours.text)) {
      ++mismatches;
      ADD_FAILURE() << label << " case " << i << ": " << what.substr(0, 400)
                    << "\n  python: " << (ref[i].ok ? "" : "error ") << show(ref[i].text).substr(0, 2000)
                    << "\n  tailor: " << (ours.ok ? "" : "error ") << show(ours.text).substr(0, 2000);
    }
  }
  EXPECT_EQ(mismatches, 0) << label << ": " << mismatches << " of " << cases.size()
                           << " cases differ from python";
}

// Cases for templates rendered with one shared context.
inline OrderedJson template_cases(const std::vector<std::string>& templates, const OrderedJson& context) {
  OrderedJson cases = OrderedJson::array();
  for (auto& t : templates) cases.push_back({{"template", t}, {"context", context}, {"now", kNow}});
  return cases;
}

}  // namespace tailor::chat_template_test

// End to end through the real binary: gen-model -> run (text, ids, constrained) -> chat, and the CLI's
// errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/json.h"

namespace fs = std::filesystem;

namespace {

struct Out {
  int code;
  std::string out;  // stdout only
};

// Runs `tailor ARGS` (stderr to a file we ignore unless asked) and returns its exit code and stdout.
Out tailor(const std::string& args, const std::string& stdin_text = "", std::string* err = nullptr) {
  const std::string errf = fs::temp_directory_path() / ("tailor-cli-err-" + std::to_string(::getpid()));
  std::string cmd = std::string(TAILOR_BIN) + " " + args + " 2>" + errf;
  if (!stdin_text.empty()) {
    const std::string inf = errf + ".in";
    FILE* f = std::fopen(inf.c_str(), "w");
    std::fputs(stdin_text.c_str(), f);
    std::fclose(f);
    cmd += " <" + inf;
  } else {
    cmd += " </dev/null";
  }
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  if (err) {
    FILE* f = std::fopen(errf.c_str(), "r");
    while (f && (n = fread(buf.data(), 1, buf.size(), f)) > 0) err->append(buf.data(), n);
    if (f) std::fclose(f);
  }
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (fs::temp_directory_path() / ("tailor-cli-model-" + std::to_string(::getpid()))).string();
    auto r = tailor("gen-model --arch qwen3 --preset tiny --dtype bf16 --quiet --out " + dir_);
    ASSERT_EQ(r.code, 0);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string dir_;
};
std::string Cli::dir_;

TEST_F(Cli, RunTextIsDeterministicAtTemperatureZero) {
  auto a = tailor("run " + dir_ + " --prompt 'Hello, world' --temperature 0 --max-tokens 16 --quiet");
  auto b = tailor("run " + dir_ + " --prompt 'Hello, world' --temperature 0 --max-tokens 16 --quiet");
  ASSERT_EQ(a.code, 0);
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);
}

TEST_F(Cli, SameSeedSameTokensDifferentSeedDiffers) {
  auto run = [&](int seed) {
    return tailor("run " + dir_ +
                  " --prompt-ids 1,2,3 --ids --temperature 1.0 --max-tokens 24 --quiet --seed " +
                  std::to_string(seed));
  };
  auto a = run(7), b = run(7), c = run(8);
  ASSERT_EQ(a.code, 0);
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  // --ids prints exactly max-tokens ids (the random model rarely emits EOS; --ignore-eos is not set, so <=
  // 24).
  int n = 0;
  for (char ch : a.out) n += ch == ' ';
  EXPECT_LE(n + 1, 24);
}

TEST_F(Cli, JsonSchemaOutputParses) {
  const std::string schema = (fs::path(dir_) / "answer.json").string();
  FILE* f = std::fopen(schema.c_str(), "w");
  std::fputs(
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},"value":{"type":"integer"}},)"
      R"("required":["name","value"],"additionalProperties":false})",
      f);
  std::fclose(f);
  for (int seed = 1; seed <= 5; ++seed) {
    auto r = tailor("run " + dir_ + " --prompt 'answer:' --json-schema " + schema +
                    " --temperature 1 --max-tokens 200 --quiet --seed " + std::to_string(seed));
    ASSERT_EQ(r.code, 0);
    auto j = tailor::parse_json(r.out, "output");
    ASSERT_TRUE(j.ok()) << r.out;
    EXPECT_TRUE((*j)["name"].is_string());
    EXPECT_TRUE((*j)["value"].is_number_integer());
    EXPECT_EQ(j->size(), 2u);
  }
}

// Random weights never close an unbounded string: without steering the output is cut by --max-tokens and
// says so; --grammar-finish-after ends it validly within the budget.
TEST_F(Cli, GrammarFinishAfterEndsAnUnboundedString) {
  const std::string schema = (fs::path(dir_) / "note.json").string();
  FILE* f = std::fopen(schema.c_str(), "w");
  std::fputs(R"({"type":"object","properties":{"note":{"type":"string"}},"required":["note"]})", f);
  std::fclose(f);
  const std::string base = "run " + dir_ + " --prompt 'note:' --json-schema " + schema +
                           " --temperature 1 --max-tokens 48 --seed 3";
  std::string err;
  auto cut = tailor(base, "", &err);
  ASSERT_EQ(cut.code, 0) << err;
  EXPECT_NE(err.find("incomplete (finish: length)"), std::string::npos) << err;
  EXPECT_FALSE(tailor::parse_json(cut.out, "output").ok()) << cut.out;
  err.clear();
  auto done = tailor(base + " --grammar-finish-after 8", "", &err);
  ASSERT_EQ(done.code, 0) << err;
  EXPECT_NE(err.find("finish: stop"), std::string::npos) << err;
  auto j = tailor::parse_json(done.out, "output");
  ASSERT_TRUE(j.ok()) << done.out;
  EXPECT_TRUE((*j)["note"].is_string());
}

TEST_F(Cli, ChatRendersTemplateAndAnswersEachLine) {
  std::string err;
  auto r =
      tailor("chat " + dir_ + " --max-tokens 6 --temperature 0 --system 'Be brief.'", "hi\nagain\n", &err);
  ASSERT_EQ(r.code, 0) << err;
  int lines = 0;
  for (char ch : r.out) lines += ch == '\n';
  EXPECT_EQ(lines, 2) << r.out;  // one reply per user line
}

TEST_F(Cli, ClearErrors) {
  std::string err;
  EXPECT_EQ(tailor("run /nonexistent/model --prompt hi", "", &err).code, 1);
  EXPECT_NE(err.find("no such model folder"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tailor("run " + dir_ + " --prompt hi --temperature -1", "", &err).code, 2);
  EXPECT_NE(err.find("temperature"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tailor("run " + dir_ + " --prompt hi --bogus 3", "", &err).code, 2);
  EXPECT_NE(err.find("unknown flag --bogus"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tailor("run " + dir_ + " --prompt-ids 1,x,3", "", &err).code, 2);
  EXPECT_NE(err.find("'x'"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tailor("run " + dir_ + " --prompt hi --json-schema /nonexistent.json", "", &err).code, 1);
  EXPECT_NE(err.find("/nonexistent.json"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tailor("run " + dir_ + " --prompt hi --grammar-finish-after 4", "", &err).code, 2);
  EXPECT_NE(err.find("--grammar-finish-after needs"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tailor("gen-model --arch gpt2 --out /tmp/x", "", &err).code, 2);
  EXPECT_NE(err.find("qwen2, qwen3, llama, granite, mistral"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tailor("nosuchcommand", "", &err).code, 2);
}

// --gpu-layers is a load flag of run, chat, serve and bench (listed in each --help); without a GPU it is an
// error that says so. The split it makes on a GPU is tested in tests/cuda/test_split_runner.cpp.
TEST_F(Cli, GpuLayersFlag) {
  for (const char* cmd : {"run", "chat", "serve", "bench"}) {
    auto h = tailor(std::string(cmd) + " --help");
    EXPECT_EQ(h.code, 0) << cmd;
    EXPECT_NE(h.out.find("--gpu-layers N"), std::string::npos) << cmd << ":\n" << h.out;
  }
  std::string err;
  EXPECT_EQ(
      tailor("run " + dir_ + " --prompt-ids 1,2 --max-tokens 2 --device cpu --gpu-layers 1", "", &err).code,
      1);
  EXPECT_NE(err.find("--gpu-layers 1 needs a GPU"), std::string::npos) << err;
  err.clear();
  EXPECT_EQ(tailor("run " + dir_ + " --prompt-ids 1,2 --max-tokens 2 --gpu-layers -3", "", &err).code, 2);
  EXPECT_NE(err.find("--gpu-layers must be 0 or more"), std::string::npos) << err;
  // --gpu-layers 0 keeps every layer on the CPU: runs anywhere.
  auto r =
      tailor("run " + dir_ + " --prompt-ids 1,2 --ids --max-tokens 2 --temperature 0 --quiet --gpu-layers 0");
  EXPECT_EQ(r.code, 0);
}

}  // namespace

// `tailor plan` end to end: the probe, a config-only plan, a refusal's exit code, --json, and bad flags.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "core/json.h"
#include "plan_test_util.h"

namespace tailor {
namespace {

using testing::TempDir;

struct CmdResult {
  int code = -1;
  std::string out;
};

// stderr joins stdout unless `stdout_only` (for output that must parse as JSON).
CmdResult run_tailor(const std::string& args, bool stdout_only = false) {
  CmdResult r;
  const std::string cmd = std::string(TAILOR_BIN) + " " + args + (stdout_only ? " 2>/dev/null" : " 2>&1");
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(f);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Qwen2.5-7B's config.json (no weights beside it: planned from the shape).
std::string write_7b_config(const TempDir& dir) {
  const std::string path = dir.path() + "/config.json";
  std::ofstream(path) << R"({"architectures": ["Qwen2ForCausalLM"], "vocab_size": 152064, "hidden_size": 3584,
    "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944,
    "max_position_embeddings": 32768, "tie_word_embeddings": false, "torch_dtype": "bfloat16"})";
  return path;
}

TEST(CliPlan, ProbePrintsThisMachineWithoutAModel) {
  CmdResult r = run_tailor("plan --probe");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cpu:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("available"), std::string::npos) << r.out;
  CmdResult j = run_tailor("plan --probe --json", true);
  EXPECT_EQ(j.code, 0);
  auto parsed = parse_json(j.out, "probe output");
  ASSERT_TRUE(parsed.ok()) << j.out;
  EXPECT_TRUE((*parsed)["cpu"]["mem_available_bytes"].is_number());
}

TEST(CliPlan, ConfigOnlyPlansFitOrRefuse) {
  TempDir dir;
  write_7b_config(dir);
  CmdResult ok = run_tailor("plan " + dir.path() + " --device-profile nvidia-h100-80gb");
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("28/28 layers on GPU"), std::string::npos) << ok.out;
  CmdResult split =
      run_tailor("plan " + dir.path() + " --device-profile nvidia-rtx3060-12gb --ctx 8192 --json", true);
  EXPECT_EQ(split.code, 0) << split.out;
  auto j = parse_json(split.out, "plan --json");
  ASSERT_TRUE(j.ok()) << split.out;
  EXPECT_TRUE((*j)["fits"].get<bool>());
  EXPECT_GT((*j)["n_gpu_layers"].get<int>(), 0);
  EXPECT_LT((*j)["n_gpu_layers"].get<int>(), 28);
  CmdResult refuse = run_tailor("plan " + dir.path() + "/config.json --device-profile cpu-avx2-8gb");
  EXPECT_EQ(refuse.code, 1) << refuse.out;
  EXPECT_NE(refuse.out.find("tailor: error:"), std::string::npos) << refuse.out;
  EXPECT_NE(refuse.out.find("q4_k would need"), std::string::npos) << refuse.out;
}

TEST(CliPlan, BadInputGivesClearErrors) {
  TempDir dir;
  write_7b_config(dir);
  CmdResult unknown = run_tailor("plan " + dir.path() + " --device-profile nvidia-b9000");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.out.find("unknown device profile \"nvidia-b9000\""), std::string::npos) << unknown.out;
  EXPECT_NE(unknown.out.find("apple-m2-16gb"), std::string::npos) << unknown.out;
  CmdResult dtype = run_tailor("plan " + dir.path() + " --dtype fp9");
  EXPECT_EQ(dtype.code, 2);
  EXPECT_NE(dtype.out.find("unknown dtype \"fp9\""), std::string::npos) << dtype.out;
  CmdResult ctx0 = run_tailor("plan " + dir.path() + " --device-profile nvidia-t4 --ctx 0");
  EXPECT_EQ(ctx0.code, 1);
  EXPECT_NE(ctx0.out.find("--ctx must be at least 1"), std::string::npos) << ctx0.out;
  CmdResult ctx_big = run_tailor("plan " + dir.path() + " --device-profile nvidia-t4 --ctx 10000000");
  EXPECT_EQ(ctx_big.code, 1);
  EXPECT_NE(ctx_big.out.find("max_position_embeddings 32768"), std::string::npos) << ctx_big.out;
  CmdResult ctx_text = run_tailor("plan " + dir.path() + " --ctx lots");
  EXPECT_EQ(ctx_text.code, 2);
  CmdResult none = run_tailor("plan");
  EXPECT_EQ(none.code, 2);
  CmdResult missing = run_tailor("plan " + dir.path() + "/nope --device-profile nvidia-t4");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("nope"), std::string::npos) << missing.out;
  CmdResult list = run_tailor("plan --list-profiles");
  EXPECT_EQ(list.code, 0);
  EXPECT_NE(list.out.find("nvidia-h200-141gb"), std::string::npos);
}

}  // namespace
}  // namespace tailor

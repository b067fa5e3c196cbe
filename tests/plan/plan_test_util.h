// Model shapes and helpers shared by the plan tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "model/model_spec.h"
#include "plan/plan.h"

namespace tailor::testing {

// Qwen2.5-0.5B (config.json of the HF release).
inline HParams qwen_05b() {
  HParams hp;
  hp.arch = Arch::qwen2;
  hp.n_vocab = 151936;
  hp.n_embd = 896;
  hp.n_layer = 24;
  hp.n_head = 14;
  hp.n_head_kv = 2;
  hp.head_dim = 64;
  hp.n_ff = 4864;
  hp.max_position_embeddings = 32768;
  hp.tie_word_embeddings = true;
  hp.attention_bias = true;
  return hp;
}

// Qwen2.5-3B.
inline HParams qwen_3b() {
  HParams hp = qwen_05b();
  hp.n_embd = 2048;
  hp.n_layer = 36;
  hp.n_head = 16;
  hp.n_head_kv = 2;
  hp.head_dim = 128;
  hp.n_ff = 11008;
  return hp;
}

// Qwen2.5-7B.
inline HParams qwen_7b() {
  HParams hp = qwen_05b();
  hp.n_vocab = 152064;
  hp.n_embd = 3584;
  hp.n_layer = 28;
  hp.n_head = 28;
  hp.n_head_kv = 4;
  hp.head_dim = 128;
  hp.n_ff = 18944;
  hp.tie_word_embeddings = false;
  return hp;
}

// Meta-Llama-3-8B.
inline HParams llama3_8b() {
  HParams hp;
  hp.arch = Arch::llama;
  hp.n_vocab = 128256;
  hp.n_embd = 4096;
  hp.n_layer = 32;
  hp.n_head = 32;
  hp.n_head_kv = 8;
  hp.head_dim = 128;
  hp.n_ff = 14336;
  hp.max_position_embeddings = 8192;
  hp.rope_theta = 500000;
  return hp;
}

// A tiny Qwen2 shape for tests that hold real weight bytes.
inline HParams tiny_qwen() {
  HParams hp = qwen_05b();
  hp.n_vocab = 256;
  hp.n_embd = 64;
  hp.n_layer = 2;
  hp.n_head = 4;
  hp.n_head_kv = 2;
  hp.head_dim = 16;
  hp.n_ff = 128;
  hp.max_position_embeddings = 512;
  hp.tie_word_embeddings = false;
  return hp;
}

inline DeviceInfo profile(const std::string& name) {
  auto d = device_profile(name);
  if (!d.ok()) throw std::runtime_error(d.status().message());
  return *d;
}

// A fresh temporary folder, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "tailor_plan_XXXXXX").string();
    path_ = mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace tailor::testing

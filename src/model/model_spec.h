// What a model *is*, independent of where it will run: the architecture, its hyper-parameters (names as in
// HF config.json) and the table of stored tensors. The Plan (src/plan) decides dtypes and placement from
// this.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "io/safetensors.h"

namespace tailor {

enum class Arch : uint8_t { llama, qwen2, qwen3, granite, mistral };
const char* arch_hf_name(Arch a);  // "LlamaForCausalLM", ...

struct RopeScaling {
  enum class Type : uint8_t { none, linear, llama3 } type = Type::none;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;                 // llama3
  float high_freq_factor = 4.0f;                // llama3
  int original_max_position_embeddings = 8192;  // llama3
};

struct HParams {
  Arch arch = Arch::llama;
  int n_vocab = 0;    // vocab_size
  int n_embd = 0;     // hidden_size
  int n_layer = 0;    // num_hidden_layers
  int n_head = 0;     // num_attention_heads
  int n_head_kv = 0;  // num_key_value_heads
  int head_dim = 0;   // head_dim (default hidden_size / num_attention_heads)
  int n_ff = 0;       // intermediate_size
  int max_position_embeddings = 4096;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v (Qwen2: always; Llama: config attention_bias)
  bool o_proj_bias = false;     // Llama with attention_bias also biases o_proj
  bool mlp_bias = false;
  bool qk_norm = false;  // Qwen3: RMSNorm over each head of q and k before RoPE
  // Granite multipliers (1 elsewhere). attention_multiplier replaces 1/sqrt(head_dim) when set.
  float embedding_multiplier = 1.0f;
  float residual_multiplier = 1.0f;
  std::optional<float> attention_multiplier;
  float logits_scaling = 1.0f;        // logits are divided by this
  std::optional<int> sliding_window;  // Mistral; not applied by the wave-1 forward (see docs)
  DType torch_dtype = DType::bf16;
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;

  float attn_scale() const;  // attention_multiplier or 1/sqrt(head_dim)
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};

// Parses config.json text (with generation_config.json's eos ids merged in by load_model_spec).
// Unknown architectures give an error listing the supported ones.
Result<HParams> parse_hf_config(const std::string& json_text, const std::string& file_name);

// The tensors a model of these hparams needs, with their shapes (HF names). Used to validate a checkpoint
// and by gen-model to write one.
struct TensorSpec {
  std::string name;
  Shape shape;
  int layer = -1;  // -1 for embeddings, final norm, lm_head
};
std::vector<TensorSpec> expected_tensors(const HParams& hp);

struct ModelSpec {
  std::string dir;  // the model folder
  HParams hp;
  std::shared_ptr<SafeTensorsArchive> weights;
  uint64_t weight_bytes() const;  // bytes of the stored tensors the model uses
};

// Reads config.json (+ generation_config.json) and opens the safetensors, checking every expected tensor
// exists with the right shape. Errors name the folder, file or tensor and the fix.
Result<ModelSpec> load_model_spec(const std::string& dir);

}  // namespace tailor

// config.json (+ generation_config.json) -> HParams, and the tensor table each architecture needs.
#include <cmath>
#include <set>

#include "core/log.h"
#include "core/mmap.h"
#include "model/archs/arch.h"

namespace tailor {

const std::vector<const ArchDef*>& all_archs() {
  static const std::vector<const ArchDef*> v = {&kLlamaArch, &kQwen2Arch, &kQwen3Arch, &kGraniteArch,
                                                &kMistralArch};
  return v;
}

const ArchDef& arch_def(Arch a) {
  for (auto* d : all_archs())
    if (d->arch == a) return *d;
  TAILOR_CHECK(false) << "unknown arch";
  return kLlamaArch;
}

const char* arch_hf_name(Arch a) {
  return arch_def(a).hf_name;
}

float HParams::attn_scale() const {
  return attention_multiplier ? *attention_multiplier : 1.0f / std::sqrt(float(head_dim));
}

Status read_bool(const Json& cfg, const char* key, bool& out) {
  if (!cfg.contains(key) || cfg[key].is_null()) return {};
  if (!cfg[key].is_boolean())
    return invalid_argument(cat("config.json: \"", key, "\" must be true or false"));
  out = cfg[key].get<bool>();
  return {};
}

Status read_float(const Json& cfg, const char* key, float& out) {
  if (!cfg.contains(key) || cfg[key].is_null()) return {};
  if (!cfg[key].is_number()) return invalid_argument(cat("config.json: \"", key, "\" must be a number"));
  out = cfg[key].get<float>();
  if (!std::isfinite(out)) return invalid_argument(cat("config.json: \"", key, "\" must be finite"));
  return {};
}

Status read_int(const Json& cfg, const char* key, int& out) {
  if (!cfg.contains(key) || cfg[key].is_null()) return {};
  if (!cfg[key].is_number_integer())
    return invalid_argument(cat("config.json: \"", key, "\" must be an integer"));
  const int64_t v = cfg[key].get<int64_t>();
  if (v < 0 || v > (1ll << 31) - 1)
    return invalid_argument(cat("config.json: \"", key, "\" is out of range: ", v));
  out = int(v);
  return {};
}

Status read_rope_scaling(const Json& cfg, HParams& hp) {
  // transformers v5 writes {"rope_parameters": {"rope_type", "rope_theta", ...}}; v4 wrote rope_theta and
  // rope_scaling at the top level. Both are read.
  const char* key = "rope_scaling";
  if (cfg.contains("rope_parameters") && cfg["rope_parameters"].is_object()) {
    key = "rope_parameters";
    TAILOR_RETURN_IF_ERROR(read_float(cfg["rope_parameters"], "rope_theta", hp.rope_theta));
  }
  if (!cfg.contains(key) || cfg[key].is_null()) return {};
  const Json& rs = cfg[key];
  if (!rs.is_object()) return invalid_argument(cat("config.json: \"", key, "\" must be an object or null"));
  std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
  if (type == "default") return {};
  if (type == "linear") {
    hp.rope_scaling.type = RopeScaling::Type::linear;
  } else if (type == "llama3") {
    hp.rope_scaling.type = RopeScaling::Type::llama3;
    TAILOR_RETURN_IF_ERROR(read_float(rs, "low_freq_factor", hp.rope_scaling.low_freq_factor));
    TAILOR_RETURN_IF_ERROR(read_float(rs, "high_freq_factor", hp.rope_scaling.high_freq_factor));
    TAILOR_RETURN_IF_ERROR(
        read_int(rs, "original_max_position_embeddings", hp.rope_scaling.original_max_position_embeddings));
    if (hp.rope_scaling.high_freq_factor <= hp.rope_scaling.low_freq_factor)
      return invalid_argument("config.json: rope_scaling.high_freq_factor must exceed low_freq_factor");
  } else {
    return unsupported(cat("config.json: rope_scaling type \"", type,
                           "\" is not supported (supported: default, linear, llama3)"));
  }
  TAILOR_RETURN_IF_ERROR(read_float(rs, "factor", hp.rope_scaling.factor));
  if (hp.rope_scaling.factor <= 0) return invalid_argument("config.json: rope_scaling.factor must be > 0");
  return {};
}

Result<HParams> parse_hf_config(const std::string& json_text, const std::string& file_name) {
  TAILOR_ASSIGN_OR_RETURN(Json cfg, parse_json(json_text, file_name));
  if (!cfg.is_object()) return invalid_argument(cat(file_name, ": expected a JSON object"));
  std::string supported;
  for (auto* d : all_archs()) supported += cat(supported.empty() ? "" : ", ", d->hf_name);
  if (!cfg.contains("architectures") || !cfg["architectures"].is_array() || cfg["architectures"].empty() ||
      !cfg["architectures"][0].is_string())
    return invalid_argument(
        cat(file_name,
            ": missing \"architectures\" (a list like [\"Qwen2ForCausalLM\"]); supported: ", supported));
  const std::string name = cfg["architectures"][0].get<std::string>();
  const ArchDef* def = nullptr;
  for (auto* d : all_archs())
    if (name == d->hf_name) def = d;
  if (!def)
    return unsupported(
        cat(file_name, ": architecture \"", name, "\" is not supported; supported: ", supported));

  HParams hp;
  hp.arch = def->arch;
  auto ctx = [&](Status st) { return st.with_context(""); };
  struct Req {
    const char* key;
    int* out;
  } req[] = {{"vocab_size", &hp.n_vocab},
             {"hidden_size", &hp.n_embd},
             {"num_hidden_layers", &hp.n_layer},
             {"num_attention_heads", &hp.n_head},
             {"intermediate_size", &hp.n_ff}};
  for (auto& r : req) {
    if (!cfg.contains(r.key))
      return invalid_argument(cat(file_name, ": missing required field \"", r.key, "\""));
    TAILOR_RETURN_IF_ERROR(ctx(read_int(cfg, r.key, *r.out)));
    if (*r.out <= 0) return invalid_argument(cat(file_name, ": \"", r.key, "\" must be > 0"));
  }
  hp.n_head_kv = hp.n_head;
  TAILOR_RETURN_IF_ERROR(read_int(cfg, "num_key_value_heads", hp.n_head_kv));
  hp.head_dim = hp.n_embd / hp.n_head;
  TAILOR_RETURN_IF_ERROR(read_int(cfg, "head_dim", hp.head_dim));
  TAILOR_RETURN_IF_ERROR(read_int(cfg, "max_position_embeddings", hp.max_position_embeddings));
  TAILOR_RETURN_IF_ERROR(read_float(cfg, "rms_norm_eps", hp.rms_norm_eps));
  TAILOR_RETURN_IF_ERROR(read_float(cfg, "rope_theta", hp.rope_theta));
  TAILOR_RETURN_IF_ERROR(read_bool(cfg, "tie_word_embeddings", hp.tie_word_embeddings));
  if (cfg.contains("torch_dtype") && cfg["torch_dtype"].is_string()) {
    if (auto t = dtype_from_name(cfg["torch_dtype"].get<std::string>())) hp.torch_dtype = *t;
  } else if (cfg.contains("dtype") && cfg["dtype"].is_string()) {
    if (auto t = dtype_from_name(cfg["dtype"].get<std::string>())) hp.torch_dtype = *t;
  }
  if (cfg.contains("bos_token_id") && cfg["bos_token_id"].is_number_integer())
    hp.bos_token_id = cfg["bos_token_id"].get<int>();
  if (cfg.contains("eos_token_id")) {
    const Json& e = cfg["eos_token_id"];
    if (e.is_number_integer()) hp.eos_token_ids = {e.get<int>()};
    if (e.is_array())
      for (auto& x : e)
        if (x.is_number_integer()) hp.eos_token_ids.push_back(x.get<int>());
  }
  if (Status st = def->configure(cfg, hp); !st.ok()) return st.with_context(file_name + ": ");

  if (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0)
    return invalid_argument(cat(file_name, ": num_attention_heads (", hp.n_head,
                                ") must be a multiple of num_key_value_heads (", hp.n_head_kv, ")"));
  if (hp.head_dim <= 0 || hp.head_dim % 2 != 0)
    return invalid_argument(cat(file_name, ": head_dim must be even and > 0, got ", hp.head_dim));
  if (hp.rope_theta <= 0) return invalid_argument(cat(file_name, ": rope_theta must be > 0"));
  return hp;
}

std::vector<TensorSpec> expected_tensors(const HParams& hp) {
  std::vector<TensorSpec> t;
  const int64_t D = hp.n_embd, V = hp.n_vocab, F = hp.n_ff, Q = hp.q_dim(), KV = hp.kv_dim();
  t.push_back({"model.embed_tokens.weight", {V, D}, -1});
  for (int i = 0; i < hp.n_layer; ++i) {
    const std::string p = cat("model.layers.", i, ".");
    t.push_back({p + "input_layernorm.weight", {D}, i});
    t.push_back({p + "self_attn.q_proj.weight", {Q, D}, i});
    t.push_back({p + "self_attn.k_proj.weight", {KV, D}, i});
    t.push_back({p + "self_attn.v_proj.weight", {KV, D}, i});
    t.push_back({p + "self_attn.o_proj.weight", {D, Q}, i});
    if (hp.attention_bias) {
      t.push_back({p + "self_attn.q_proj.bias", {Q}, i});
      t.push_back({p + "self_attn.k_proj.bias", {KV}, i});
      t.push_back({p + "self_attn.v_proj.bias", {KV}, i});
    }
    if (hp.o_proj_bias) t.push_back({p + "self_attn.o_proj.bias", {D}, i});
    if (hp.qk_norm) {
      t.push_back({p + "self_attn.q_norm.weight", {hp.head_dim}, i});
      t.push_back({p + "self_attn.k_norm.weight", {hp.head_dim}, i});
    }
    t.push_back({p + "post_attention_layernorm.weight", {D}, i});
    t.push_back({p + "mlp.gate_proj.weight", {F, D}, i});
    t.push_back({p + "mlp.up_proj.weight", {F, D}, i});
    t.push_back({p + "mlp.down_proj.weight", {D, F}, i});
    if (hp.mlp_bias) {
      t.push_back({p + "mlp.gate_proj.bias", {F}, i});
      t.push_back({p + "mlp.up_proj.bias", {F}, i});
      t.push_back({p + "mlp.down_proj.bias", {D}, i});
    }
  }
  t.push_back({"model.norm.weight", {D}, -1});
  if (!hp.tie_word_embeddings) t.push_back({"lm_head.weight", {V, D}, -1});
  return t;
}

uint64_t ModelSpec::weight_bytes() const {
  uint64_t n = 0;
  for (const auto& ts : expected_tensors(hp))
    if (const SafeTensor* t = weights->find(ts.name)) n += t->nbytes;
  return n;
}

Result<ModelSpec> load_model_spec(const std::string& dir) {
  if (!is_directory(dir)) {
    if (!file_exists(dir)) return not_found(cat(dir, ": no such model folder"));
    return invalid_argument(
        cat(dir, ": expected a model folder (with config.json and *.safetensors), got a file"));
  }
  const std::string cfg_path = dir + "/config.json";
  if (!file_exists(cfg_path))
    return not_found(
        cat(dir, ": no config.json; a Hugging Face model folder needs config.json and *.safetensors"));
  TAILOR_ASSIGN_OR_RETURN(std::string cfg_text, read_file(cfg_path));
  ModelSpec spec;
  spec.dir = dir;
  TAILOR_ASSIGN_OR_RETURN(spec.hp, parse_hf_config(cfg_text, cfg_path));

  // generation_config.json's eos ids win (chat models list <|im_end|> there).
  const std::string gen_path = dir + "/generation_config.json";
  if (file_exists(gen_path)) {
    auto gen = read_json_file(gen_path);
    if (!gen.ok()) return gen.status();
    const Json& g = *gen;
    if (g.is_object() && g.contains("eos_token_id")) {
      std::vector<int> ids;
      const Json& e = g["eos_token_id"];
      if (e.is_number_integer()) ids = {e.get<int>()};
      if (e.is_array())
        for (auto& x : e)
          if (x.is_number_integer()) ids.push_back(x.get<int>());
      if (!ids.empty()) spec.hp.eos_token_ids = ids;
    }
  }

  auto archive = SafeTensorsArchive::open(dir);
  if (!archive.ok()) return archive.status();
  spec.weights = std::make_shared<SafeTensorsArchive>(std::move(archive).value());
  for (const auto& ts : expected_tensors(spec.hp)) {
    TAILOR_RETURN_IF_ERROR(spec.weights->expect(ts.name, ts.shape));
    const SafeTensor* t = spec.weights->find(ts.name);
    if (t->dtype != DType::f32 && t->dtype != DType::f16 && t->dtype != DType::bf16)
      return unsupported(
          cat(dir, ": tensor \"", ts.name, "\" is stored as ", dtype_name(t->dtype),
              "; tailor reads f32, f16 and bf16 safetensors (GGUF quantized types come later)"));
  }
  return spec;
}

}  // namespace tailor

#!/usr/bin/env python3
"""Golden fixtures for tailor's CPU forward pass, made with HF transformers (run on the GPU machine).

For each architecture a tiny random model is built with transformers, saved with save_pretrained (so tailor's
loader reads real HF output: config.json, generation_config.json, model.safetensors), and run eagerly:
  - logits of every prompt position,
  - 32 greedy steps (incremental decoding with the KV cache), with the logits of each step.
Each model is saved in f32 and bf16 (bf16 also computed in bf16 by HF); seeds whose HF bf16 logits stray over
1% from HF f32 are rejected (too noisy a reference). Weights are drawn with scales that keep
logits well separated; a seed is rejected if any greedy step's top-2 gap is under MIN_GAP.

Usage: python3 tools/make_golden.py OUT_DIR      (writes OUT_DIR/<case>/<dtype>/{model files, golden.safetensors})
"""
import json, os, sys
import torch
import transformers
from safetensors.torch import save_file

VOCAB, HIDDEN, LAYERS, FF, PROMPT, STEPS = 512, 64, 2, 128, 8, 32
MIN_GAP = 0.05

def cases():
    T = transformers
    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FF, num_hidden_layers=LAYERS,
                  max_position_embeddings=256, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)
    yield "qwen2", T.Qwen2Config(**common, num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6,
                                 tie_word_embeddings=True), T.Qwen2ForCausalLM
    yield "qwen3", T.Qwen3Config(**common, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                                 rope_theta=1e6, tie_word_embeddings=False), T.Qwen3ForCausalLM
    yield "llama", T.LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=1, rope_theta=500000.0,
                                 rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                   high_freq_factor=4.0, original_max_position_embeddings=64),
                                 tie_word_embeddings=False), T.LlamaForCausalLM
    yield "granite", T.GraniteConfig(**common, num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                                     embedding_multiplier=12.0, residual_multiplier=0.22,
                                     attention_multiplier=0.0625, logits_scaling=8.0,
                                     tie_word_embeddings=True), T.GraniteForCausalLM
    yield "mistral", T.MistralConfig(**common, num_attention_heads=4, num_key_value_heads=4, rope_theta=10000.0,
                                     sliding_window=None, tie_word_embeddings=False), T.MistralForCausalLM

def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "model.norm.weight":  # larger logits: greedy choices far from ties
                p.copy_(4.0 + 0.5 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1 and "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / p.shape[1] ** 0.5))

def run(model, prompt):
    with torch.no_grad():
        out = model(prompt, use_cache=False)
        prompt_logits = out.logits[0].float()
        g = model.generate(prompt, max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=False,
                           output_logits=True, return_dict_in_generate=True, pad_token_id=0, eos_token_id=None)
    steps = torch.stack([l[0].float() for l in g.logits])  # [STEPS, V]: logits that chose each token
    tokens = g.sequences[0, prompt.shape[1]:]
    return prompt_logits, steps, tokens

def min_gap(logits):
    top2 = torch.topk(logits, 2, dim=-1).values
    return float((top2[:, 0] - top2[:, 1]).min())

def main(out_dir):
    for name, cfg, cls in cases():
        for seed in range(100):
            gen = torch.Generator().manual_seed(1000 + seed)
            model = cls(cfg).eval()
            if hasattr(model, "set_attn_implementation"):
                model.set_attn_implementation("eager")
            randomize(model, gen)
            prompt = torch.randint(3, VOCAB, (1, PROMPT), generator=gen)
            results = {}
            ok = True
            for dt in ("f32", "bf16"):
                m = model
                if dt == "bf16":
                    m = cls(cfg).eval().to(torch.bfloat16)
                    if hasattr(m, "set_attn_implementation"):
                        m.set_attn_implementation("eager")
                    m.load_state_dict({k: v.to(torch.bfloat16) for k, v in model.state_dict().items()})
                pl, sl, toks = run(m, prompt)
                # Token identity is asserted in f32 only; bf16 is compared by logits error (teacher forcing).
                if dt == "f32" and (min_gap(sl) < MIN_GAP or min_gap(pl[-1:]) < MIN_GAP):
                    ok = False
                    break
                results[dt] = (m, pl, sl, toks)
            # A bf16 reference is only useful if HF's own bf16 run stays close to its f32 run: reject seeds
            # where rounding noise alone (> 1%) would eat the 2e-2 bound the tests apply.
            if ok:
                f, b = results["f32"][1], results["bf16"][1]
                noise = float(((b - f).norm(dim=-1) / f.norm(dim=-1)).max())
                ok = noise <= 0.01
            if ok:
                break
        else:
            raise SystemExit(f"{name}: no seed gave well-separated logits")
        for dt, (m, pl, sl, toks) in results.items():
            d = os.path.join(out_dir, name, dt)
            os.makedirs(d, exist_ok=True)
            m.save_pretrained(d)
            save_file({"prompt_ids": prompt[0].to(torch.int32).contiguous(),
                       "prompt_logits": pl.contiguous(),
                       "step_logits": sl.contiguous(),
                       "tokens": toks.to(torch.int32).contiguous()},
                      os.path.join(d, "golden.safetensors"),
                      metadata={"seed": str(1000 + seed), "transformers": transformers.__version__,
                                "torch": torch.__version__, "min_gap": f"{min_gap(sl):.4f}"})
            print(f"{name}/{dt}: seed {1000 + seed}, tokens {toks.tolist()[:8]}..., min gap {min_gap(sl):.3f}",
                  flush=True)

if __name__ == "__main__":
    main(sys.argv[1])

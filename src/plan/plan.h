// The Plan: for one model on one machine, which dtype each tensor is stored and computed in, which device
// each layer runs on, which kernel each op class uses, and the memory budget - decided before anything is
// loaded, printable (`tailor plan`), and testable with simulated devices. run/serve load by it and print
// plan_summary_line() and plan_warnings() at start: a slow path is never silent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"
#include "model/model_spec.h"
#include "plan/device.h"
#include "plan/precision.h"

namespace tailor {

struct PlanOptions {
  std::optional<int64_t> ctx;     // tokens per sequence; default min(max_position_embeddings, 4096)
  int64_t batch = 1;              // sequences decoded together, each with its own KV cache
  std::optional<DType> dtype;     // --dtype: storage dtype of the matrices (f32 / f16 / bf16)
  std::optional<int> gpu_layers;  // --gpu-layers: decoder layers on the GPU (auto when unset)
  int gpu_index = 0;              // which GPU (multi-GPU splits are not planned yet)
  int64_t prefill_chunk = 512;    // tokens per forward pass while prefilling (sizes the activations)
  std::string model_name;         // shown in the plan
};

// One stored tensor as the planner sees it: testable without files.
struct TensorDesc {
  std::string name;
  DType dtype = DType::bf16;  // stored dtype
  Shape shape;
  const void* data = nullptr;    // the stored bytes (mmapped), for the f16 range check; may be null
  std::optional<float> max_abs;  // known max |w| (tests, cache); used when data is null
};

enum class Place : uint8_t { cpu = 0, gpu };
const char* place_name(Place p);

struct TensorPlan {
  std::string name;
  Shape shape;
  int layer = -1;  // decoder layer, -1 for the embedding / output group
  DType stored = DType::bf16;
  DType storage = DType::bf16;  // what the loader converts to (== stored: used in place from the mmap)
  DType compute = DType::f32;   // dtype of the multiply inputs (accumulation is f32)
  Place place = Place::cpu;
  std::optional<float> max_abs;  // when the range was checked
  bool kept_wider = false;       // f16 was wanted but max |w| > 65504: stored wider (bf16 or f32)
  bool range_unchecked = false;  // converted to f16 without data to check (the loader's conversion checks)
  uint64_t bytes = 0;            // bytes in `storage`
  bool converted() const { return storage != stored; }
};

// Which kernel runs one op class on one part of the model.
struct OpPlan {
  OpClass op = OpClass::matmul;
  Place place = Place::cpu;
  std::string where;  // "layers 0-23 on cuda:0", "model.layers.3.mlp.down_proj.weight"
  std::string kernel;
  DType data = DType::bf16;  // weights (matmul, embedding, norm) or cache (attention, kv_cache)
  DType compute = DType::f32;
  bool slow = false;
  std::string note;
};

struct MemoryBudget {
  bool unified = false;  // GPU and host draw on one pool (Apple): host_need includes gpu_need
  // GPU side (zero when no GPU is used). need = weights + kv + act + reserve <= free.
  uint64_t gpu_weights = 0, gpu_kv = 0, gpu_act = 0, gpu_reserve = 0, gpu_need = 0, gpu_free = 0;
  // Host side. need = weights + kv + act + staging + margin <= available (MemAvailable, not MemTotal).
  uint64_t host_weights = 0, host_kv = 0, host_act = 0, host_staging = 0, host_margin = 0;
  uint64_t host_need = 0, host_available = 0;
  std::vector<std::pair<DType, uint64_t>> weights_by_dtype;  // storage dtype -> bytes, all devices
  uint64_t weights_total() const;
};

struct Plan {
  std::string model_name;
  HParams hp;
  DeviceInfo device;
  PlanOptions options;
  Target cpu, gpu;  // gpu is meaningful when use_gpu
  bool use_gpu = false;
  int64_t ctx = 0, batch = 1, prefill_chunk = 512;
  int64_t ctx_limit = 0;  // the longest context the model supports
  int64_t max_ctx = 0;    // the longest context that fits with this placement (0: none)
  int n_layer = 0, n_gpu_layers = 0;
  bool embd_on_gpu = false, output_on_gpu = false;
  DType kv_dtype_gpu = DType::f16, kv_dtype_cpu = DType::bf16;
  std::vector<TensorPlan> tensors;
  std::vector<OpPlan> ops;
  MemoryBudget mem;
  std::vector<std::string> warnings;
  bool fits = false;
  std::string refusal;  // when !fits: what is needed, what is available, and what would fit
};

// Plans `tensors` (the stored tensors of a model with hyper-parameters `hp`) on `device`. Bad options (ctx <=
// 0 or beyond the model's limit, batch <= 0, a GPU index that does not exist, unsupported dtype) are errors;
// a model that does not fit is a Plan with fits == false and a refusal message (see plan_status).
Result<Plan> make_plan(const HParams& hp, const std::vector<TensorDesc>& tensors, const DeviceInfo& device,
                       const PlanOptions& options);
// Convenience: the tensors of a loaded model (range checks read its mmapped weights).
Result<Plan> make_plan(const ModelSpec& spec, const DeviceInfo& device, const PlanOptions& options);

// The tensors a model of `hp` has (expected_tensors), all stored as `stored`, without data: plans from a
// config.json alone ("will it fit?" before downloading). The f16 range check is then left to the loader.
std::vector<TensorDesc> tensors_from_hparams(const HParams& hp, DType stored);

// ok when the plan fits; otherwise out_of_memory carrying the refusal message.
Status plan_status(const Plan& plan);
// The lines run/serve print at start: slow paths, tensors kept wider, overrides that cost speed or memory.
std::vector<std::string> plan_warnings(const Plan& plan);
// One line: "Qwen2.5-7B on cuda:0 NVIDIA H100 80GB HBM3 (sm_90): bf16, 28/28 layers on GPU, ctx 4096, ...".
std::string plan_summary_line(const Plan& plan);
// The readable table of `tailor plan` and its JSON form.
std::string format_plan(const Plan& plan);
std::string plan_json(const Plan& plan);

const TensorPlan* find_tensor_plan(const Plan& plan, const std::string& name);
// Layer index of an HF tensor name ("model.layers.12.mlp.up_proj.weight" -> 12), -1 when not in a layer.
int layer_of_tensor(const std::string& name);

}  // namespace tailor

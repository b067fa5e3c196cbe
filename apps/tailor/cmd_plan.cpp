// tailor plan: what would run where, in which dtype, and whether it fits - for this machine or a simulated
// one.
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "core/log.h"
#include "core/mmap.h"
#include "plan/plan.h"

namespace tailor::cli {

namespace {

// A folder with config.json but no *.safetensors (or a config.json path) is planned from its shape alone.
bool config_only(const std::string& model, std::string* config_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(model, ec) && model.ends_with(".json")) {
    *config_path = model;
    return true;
  }
  if (!fs::is_directory(model, ec) || !fs::exists(fs::path(model) / "config.json", ec)) return false;
  for (const auto& e : fs::directory_iterator(model, ec))
    if (e.path().extension() == ".safetensors") return false;
  *config_path = (fs::path(model) / "config.json").string();
  return true;
}

Result<DeviceInfo> device_from_args(const Args& a) {
  if (auto p = a.get("device-profile")) return device_profile(*p);
  return probe_devices();
}

Result<PlanOptions> options_from_args(const Args& a) {
  PlanOptions o;
  if (a.has("ctx")) {
    TAILOR_ASSIGN_OR_RETURN(long long ctx, a.get_int("ctx", 0));
    o.ctx = ctx;
  }
  TAILOR_ASSIGN_OR_RETURN(long long batch, a.get_int("batch", 1));
  o.batch = batch;
  if (auto d = a.get("dtype")) {
    TAILOR_ASSIGN_OR_RETURN(DType t, parse_storage_dtype(*d));
    o.dtype = t;
  }
  if (a.has("gpu-layers")) {
    TAILOR_ASSIGN_OR_RETURN(long long n, a.get_int("gpu-layers", 0));
    if (n < 0 || n > 1000000) return invalid_argument(cat("--gpu-layers must be 0 or more (got ", n, ")"));
    o.gpu_layers = int(n);
  }
  TAILOR_ASSIGN_OR_RETURN(long long gpu, a.get_int("gpu", 0));
  o.gpu_index = int(gpu);
  return o;
}

int run_plan(const std::vector<std::string>& argv) {
  auto a = Args::parse(argv, {"device-profile", "ctx", "dtype", "batch", "gpu-layers", "gpu"},
                       {"json", "probe", "device-info", "list-profiles"});
  if (!a.ok()) return usage_error("plan", a.status().message());
  const bool json = a->has("json");

  if (a->has("list-profiles")) {
    for (const std::string& n : device_profile_names()) std::printf("%s\n", n.c_str());
    return 0;
  }
  if (a->has("probe") || a->has("device-info")) {
    if (!a->positional().empty()) return usage_error("plan", "--probe takes no MODEL");
    auto d = device_from_args(*a);
    if (!d.ok()) return fail(d.status());
    std::printf("%s\n", json ? device_info_json(*d).c_str() : format_device_info(*d).c_str());
    return 0;
  }
  if (a->positional().size() != 1)
    return usage_error("plan", "expected exactly one MODEL folder (or --probe)");
  const std::string model = a->positional()[0];

  auto opts = options_from_args(*a);
  if (!opts.ok()) return usage_error("plan", opts.status().message());
  auto dev = device_from_args(*a);
  if (!dev.ok()) return fail(dev.status());

  Result<Plan> plan = Status(ErrorCode::internal, "unset");
  std::string config_path;
  if (config_only(model, &config_path)) {
    auto text = read_file(config_path);
    if (!text.ok()) return fail(text.status());
    auto hp = parse_hf_config(*text, config_path);
    if (!hp.ok()) return fail(hp.status());
    log_info("plan: ", config_path, " has no weights beside it: planning from the shape (",
             dtype_name(hp->torch_dtype), "), without the f16 range check");
    PlanOptions o = *opts;
    o.model_name = std::filesystem::path(model).filename().string();
    if (o.model_name == "config.json")
      o.model_name = std::filesystem::path(model).parent_path().filename().string();
    plan = make_plan(*hp, tensors_from_hparams(*hp, hp->torch_dtype), *dev, o);
  } else {
    auto spec = load_model_spec(model);
    if (!spec.ok()) return fail(spec.status());
    plan = make_plan(*spec, *dev, *opts);
  }
  if (!plan.ok()) return fail(plan.status());
  std::printf("%s", json ? (plan_json(*plan) + "\n").c_str() : format_plan(*plan).c_str());
  if (!plan->fits) return fail(plan_status(*plan));
  return 0;
}

}  // namespace

TAILOR_COMMAND(
    plan, "plan", "show how a model would run here (dtypes, kernels, GPU/CPU split, memory)",
    "usage: tailor plan MODEL [--device-profile NAME|FILE] [--ctx N] [--dtype bf16|f16|f32] [--batch N]\n"
    "                   [--gpu-layers N] [--gpu I] [--json]\n"
    "       tailor plan --probe [--device-profile NAME|FILE] [--json]\n"
    "       tailor plan --list-profiles\n\n"
    "MODEL is a model folder (config.json + *.safetensors) or a config.json alone (planned from its\n"
    "shape). Prints the device, which kernel and dtype each op class uses, the per-layer GPU/CPU\n"
    "placement, the memory budget and every warning (slow paths, tensors kept wider than f16).\n"
    "Exits 1 when the model does not fit, saying what would.\n"
    "  --device-profile P   plan for a simulated device: a built-in name (--list-profiles) or a JSON file\n"
    "  --ctx N              context length per sequence [4096 or the model's limit if smaller]\n"
    "  --dtype D            storage dtype of the weight matrices [chosen per device]\n"
    "  --batch N            sequences decoded together, each with its KV cache [1]\n"
    "  --gpu-layers N       decoder layers on the GPU [as many as fit]\n"
    "  --gpu I              which GPU [0]\n"
    "  --json               machine-readable output\n"
    "  --probe              print this machine's probe (CPU, memory, GPUs) and exit; no MODEL needed",
    run_plan);

}  // namespace tailor::cli

// Simulated devices: built-in profiles (written in the same JSON a user's --device-profile FILE uses, so one
// parser serves both) and the printing of DeviceInfo. Numbers are what the hardware reports in practice:
// e.g. Apple's GPU working-set limit (recommendedMaxWorkingSetSize) is about 2/3 of RAM up to 36 GB.
#include <cmath>
#include <cstdio>

#include "core/json.h"
#include "core/mmap.h"
#include "plan/device.h"

namespace tailor {

namespace {

struct BuiltinProfile {
  const char* name;
  const char* json;
};

// Memory in GiB (as the hardware is sold); host "available" leaves what the OS and a desktop typically use.
const BuiltinProfile kProfiles[] = {
    {"apple-m2-16gb", R"J({
      "description": "MacBook Air M2, 16 GB unified memory; Metal kernels have no bf16 (M1-M3)",
      "cpu": {"model": "Apple M2", "cores": 8, "features": ["neon"], "mem_total_gib": 16,
              "mem_available_gib": 11, "bandwidth_gbs": 100},
      "gpus": [{"backend": "metal", "name": "Apple M2 GPU (10-core)", "mem_total_gib": 16,
                "mem_free_gib": 10.67, "bandwidth_gbs": 100, "unified_memory": true,
                "bf16": false, "fp16": true}]})J"},
    {"apple-m3-24gb", R"J({
      "description": "MacBook Air M3, 24 GB unified memory; tailor has no bf16 Metal kernels",
      "cpu": {"model": "Apple M3", "cores": 8, "features": ["neon"], "mem_total_gib": 24,
              "mem_available_gib": 18, "bandwidth_gbs": 100},
      "gpus": [{"backend": "metal", "name": "Apple M3 GPU (10-core)", "mem_total_gib": 24,
                "mem_free_gib": 16, "bandwidth_gbs": 100, "unified_memory": true,
                "bf16": false, "fp16": true}]})J"},
    {"nvidia-t4", R"J({
      "description": "cloud VM with an NVIDIA T4 (Turing, sm_75: f16 tensor cores, no bf16)",
      "cpu": {"model": "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", "cores": 8,
              "features": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl"],
              "mem_total_gib": 32, "mem_available_gib": 29, "bandwidth_gbs": 60},
      "gpus": [{"backend": "cuda", "name": "Tesla T4", "compute_capability": "7.5",
                "mem_total_gib": 15.0, "mem_free_gib": 14.56, "bandwidth_gbs": 320}]})J"},
    {"nvidia-rtx3060-12gb", R"J({
      "description": "desktop with a GeForce RTX 3060 12 GB (Ampere, sm_86)",
      "cpu": {"model": "AMD Ryzen 5 5600X 6-Core Processor", "cores": 12, "features": ["avx2", "fma", "f16c"],
              "mem_total_gib": 32, "mem_available_gib": 26, "bandwidth_gbs": 45},
      "gpus": [{"backend": "cuda", "name": "NVIDIA GeForce RTX 3060", "compute_capability": "8.6",
                "mem_total_gib": 12, "mem_free_gib": 11.3, "bandwidth_gbs": 360}]})J"},
    {"nvidia-a100-80gb", R"J({
      "description": "server slice with an A100 SXM4 80 GB (sm_80)",
      "cpu": {"model": "AMD EPYC 7763 64-Core Processor", "cores": 30, "features": ["avx2", "fma", "f16c"],
              "mem_total_gib": 220, "mem_available_gib": 200, "bandwidth_gbs": 150},
      "gpus": [{"backend": "cuda", "name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0",
                "mem_total_gib": 79.15, "mem_free_gib": 78.6, "bandwidth_gbs": 2039}]})J"},
    {"nvidia-h100-80gb", R"J({
      "description": "server slice with an H100 SXM 80 GB (sm_90)",
      "cpu": {"model": "Intel(R) Xeon(R) Platinum 8480+", "cores": 26,
              "features": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
                           "avx512_fp16", "amx_tile", "amx_bf16"],
              "mem_total_gib": 220, "mem_available_gib": 200, "bandwidth_gbs": 200},
      "gpus": [{"backend": "cuda", "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0",
                "mem_total_gib": 79.19, "mem_free_gib": 78.6, "bandwidth_gbs": 3352}]})J"},
    {"nvidia-h200-141gb", R"J({
      "description": "server slice with an H200 141 GB (sm_90)",
      "cpu": {"model": "Intel(R) Xeon(R) Platinum 8480+", "cores": 16,
              "features": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
                           "avx512_fp16", "amx_tile", "amx_bf16"],
              "mem_total_gib": 125, "mem_available_gib": 118, "bandwidth_gbs": 200},
      "gpus": [{"backend": "cuda", "name": "NVIDIA H200", "compute_capability": "9.0",
                "mem_total_gib": 139.8, "mem_free_gib": 139.2, "bandwidth_gbs": 4800}]})J"},
    {"cpu-avx2-16gb", R"J({
      "description": "desktop CPU, AVX2+FMA+F16C, 16 GB RAM, no GPU",
      "cpu": {"model": "Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz", "cores": 16,
              "features": ["avx2", "fma", "f16c"], "mem_total_gib": 16, "mem_available_gib": 12,
              "bandwidth_gbs": 40}})J"},
    {"cpu-avx2-8gb", R"J({
      "description": "laptop CPU, AVX2+FMA+F16C, 8 GB RAM, no GPU",
      "cpu": {"model": "Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz", "cores": 8,
              "features": ["avx2", "fma", "f16c"], "mem_total_gib": 8, "mem_available_gib": 5.5,
              "bandwidth_gbs": 30}})J"},
    {"cpu-avx512bf16-32gb", R"J({
      "description": "Sapphire Rapids VM, AVX-512 with BF16 dot products and AMX, 32 GB RAM, no GPU",
      "cpu": {"model": "Intel(R) Xeon(R) Gold 6430", "cores": 16,
              "features": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
                           "avx512_fp16", "amx_tile", "amx_bf16"],
              "mem_total_gib": 32, "mem_available_gib": 29, "bandwidth_gbs": 120}})J"},
};

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Typed field access with errors naming the source and the field path.
class Reader {
 public:
  Reader(const Json& j, std::string path, const std::string& what)
      : j_(j), path_(std::move(path)), what_(what) {}
  Status error(const std::string& key, const std::string& msg) const {
    return invalid_argument(cat(what_, ": ", path_, key, " ", msg));
  }
  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  Result<std::string> str(const std::string& key, std::optional<std::string> def = std::nullopt) const {
    if (!has(key)) return def ? Result<std::string>(*def) : Result<std::string>(error(key, "is missing"));
    if (!j_.at(key).is_string())
      return error(key, cat("must be a string (got ", json_type_name(j_.at(key)), ")"));
    return j_.at(key).get<std::string>();
  }
  Result<double> num(const std::string& key, std::optional<double> def = std::nullopt) const {
    if (!has(key)) return def ? Result<double>(*def) : Result<double>(error(key, "is missing"));
    const Json& v = j_.at(key);
    if (!v.is_number()) return error(key, cat("must be a number (got ", json_type_name(v), ")"));
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < 0) return error(key, cat("must be a number >= 0 (got ", d, ")"));
    return d;
  }
  Result<bool> boolean(const std::string& key, bool def) const {
    if (!has(key)) return def;
    if (!j_.at(key).is_boolean())
      return error(key, cat("must be true or false (got ", json_type_name(j_.at(key)), ")"));
    return j_.at(key).get<bool>();
  }
  const Json& at(const std::string& key) const { return j_.at(key); }
  const std::string& path() const { return path_; }

 private:
  const Json& j_;
  std::string path_;
  const std::string& what_;
};

Status set_feature(CpuFeatures& f, const std::string& name) {
  struct F {
    const char* name;
    bool CpuFeatures::*flag;
  };
  static const F kFeatures[] = {
      {"avx2", &CpuFeatures::avx2},
      {"fma", &CpuFeatures::fma},
      {"f16c", &CpuFeatures::f16c},
      {"avx512f", &CpuFeatures::avx512f},
      {"avx512bw", &CpuFeatures::avx512bw},
      {"avx512vl", &CpuFeatures::avx512vl},
      {"avx512_bf16", &CpuFeatures::avx512_bf16},
      {"avx512_fp16", &CpuFeatures::avx512_fp16},
      {"avx_vnni", &CpuFeatures::avx_vnni},
      {"amx_bf16", &CpuFeatures::amx_bf16},
      {"amx_tile", &CpuFeatures::amx_tile},
      {"neon", &CpuFeatures::neon},
      {"sve", &CpuFeatures::sve},
  };
  std::string known;
  for (const F& x : kFeatures) {
    if (name == x.name) {
      f.*(x.flag) = true;
      return {};
    }
    known += (known.empty() ? "" : ", ") + std::string(x.name);
  }
  return invalid_argument(cat("unknown CPU feature \"", name, "\" (known: ", known, ")"));
}

Result<CpuInfo> parse_cpu(const Json& j, const std::string& what) {
  if (!j.is_object()) return invalid_argument(cat(what, ": \"cpu\" must be an object"));
  Reader r(j, "cpu.", what);
  CpuInfo c;
  TAILOR_ASSIGN_OR_RETURN(c.model, r.str("model", "unknown CPU"));
  TAILOR_ASSIGN_OR_RETURN(double cores, r.num("cores", 1));
  c.cores = std::max(1, int(cores));
  if (r.has("features")) {
    const Json& f = r.at("features");
    if (!f.is_array()) return r.error("features", "must be an array of names like [\"avx2\", \"fma\"]");
    for (const Json& x : f) {
      if (!x.is_string()) return r.error("features", "must hold strings");
      Status st = set_feature(c.features, x.get<std::string>());
      if (!st.ok()) return st.with_context(what + ": cpu.features: ");
    }
  }
  TAILOR_ASSIGN_OR_RETURN(double total, r.num("mem_total_gib"));
  TAILOR_ASSIGN_OR_RETURN(double avail, r.num("mem_available_gib", total * 0.8));
  if (avail > total)
    return r.error("mem_available_gib", cat("(", avail, ") exceeds mem_total_gib (", total, ")"));
  c.mem_total = uint64_t(total * kGiB);
  c.mem_available = uint64_t(avail * kGiB);
  c.mem_source = "profile";
  TAILOR_ASSIGN_OR_RETURN(c.bandwidth_gbs, r.num("bandwidth_gbs", 0));
  return c;
}

Result<GpuInfo> parse_gpu(const Json& j, int index, const std::string& what) {
  const std::string path = cat("gpus[", index, "].");
  if (!j.is_object()) return invalid_argument(cat(what, ": gpus[", index, "] must be an object"));
  Reader r(j, path, what);
  GpuInfo g;
  g.index = index;
  TAILOR_ASSIGN_OR_RETURN(std::string backend, r.str("backend", "cuda"));
  if (backend == "cuda") {
    g.backend = Backend::cuda;
  } else if (backend == "metal") {
    g.backend = Backend::metal;
  } else {
    return r.error("backend", cat("must be \"cuda\" or \"metal\" (got \"", backend, "\")"));
  }
  TAILOR_ASSIGN_OR_RETURN(g.name, r.str("name"));
  if (g.backend == Backend::cuda) {
    TAILOR_ASSIGN_OR_RETURN(std::string cc, r.str("compute_capability"));
    int major = 0, minor = 0;
    char tail = 0;
    if (std::sscanf(cc.c_str(), "%d.%d%c", &major, &minor, &tail) != 2 || major < 1 || minor < 0 || minor > 9)
      return r.error("compute_capability", cat("must look like \"8.6\" (got \"", cc, "\")"));
    g.cc_major = major;
    g.cc_minor = minor;
  }
  TAILOR_ASSIGN_OR_RETURN(double total, r.num("mem_total_gib"));
  TAILOR_ASSIGN_OR_RETURN(g.unified_memory, r.boolean("unified_memory", g.backend == Backend::metal));
  // Defaults: CUDA leaves ~3% to the context; Apple caps the GPU working set at ~2/3 of RAM (3/4 above 36
  // GB).
  const double def_free =
      g.backend == Backend::metal ? total * (total > 36 ? 0.75 : 2.0 / 3.0) : total * 0.97;
  TAILOR_ASSIGN_OR_RETURN(double free_gib, r.num("mem_free_gib", def_free));
  if (free_gib > total)
    return r.error("mem_free_gib", cat("(", free_gib, ") exceeds mem_total_gib (", total, ")"));
  g.mem_total = uint64_t(total * kGiB);
  g.mem_free = uint64_t(free_gib * kGiB);
  TAILOR_ASSIGN_OR_RETURN(g.bandwidth_gbs, r.num("bandwidth_gbs", 0));
  g.bandwidth_source = "profile";
  const bool cuda = g.backend == Backend::cuda;
  TAILOR_ASSIGN_OR_RETURN(g.fp16, r.boolean("fp16", cuda ? g.cc() >= 70 : true));
  TAILOR_ASSIGN_OR_RETURN(g.bf16, r.boolean("bf16", cuda && g.cc() >= 80));
  TAILOR_ASSIGN_OR_RETURN(g.fp8, r.boolean("fp8", cuda && g.cc() >= 89));
  return g;
}

}  // namespace

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::cpu:
      return "cpu";
    case Backend::cuda:
      return "cuda";
    case Backend::metal:
      return "metal";
  }
  return "?";
}

std::string GpuInfo::arch() const {
  if (backend == Backend::metal) return "metal";
  return cat("sm_", cc_major, cc_minor);
}

std::string format_bytes(uint64_t b) {
  char buf[64];
  if (b >= 1000000000ull) {
    std::snprintf(buf, sizeof(buf), "%.2f GB", double(b) / 1e9);
  } else if (b >= 1000000ull) {
    std::snprintf(buf, sizeof(buf), "%.1f MB", double(b) / 1e6);
  } else if (b >= 1000ull) {
    std::snprintf(buf, sizeof(buf), "%.1f KB", double(b) / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%llu B", (unsigned long long)b);
  }
  return buf;
}

Result<DeviceInfo> parse_device_profile(const std::string& text, const std::string& what) {
  TAILOR_ASSIGN_OR_RETURN(Json j, parse_json(text, what));
  if (!j.is_object()) return invalid_argument(cat(what, ": a device profile must be a JSON object"));
  try {
    DeviceInfo d;
    for (auto& [key, _] : j.items()) {
      if (key != "name" && key != "description" && key != "cpu" && key != "gpus")
        return invalid_argument(
            cat(what, ": unknown key \"", key, "\" (expected name, description, cpu, gpus)"));
    }
    if (!j.contains("cpu"))
      return invalid_argument(cat(what, ": \"cpu\" is missing (mem_total_gib at least)"));
    TAILOR_ASSIGN_OR_RETURN(d.cpu, parse_cpu(j.at("cpu"), what));
    if (j.contains("name") && j.at("name").is_string()) d.name = j.at("name").get<std::string>();
    if (j.contains("gpus")) {
      const Json& gs = j.at("gpus");
      if (!gs.is_array()) return invalid_argument(cat(what, ": \"gpus\" must be an array"));
      for (size_t i = 0; i < gs.size(); ++i) {
        TAILOR_ASSIGN_OR_RETURN(GpuInfo g, parse_gpu(gs[i], int(i), what));
        d.gpus.push_back(std::move(g));
      }
    }
    if (d.gpus.empty()) d.no_gpu_reason = "the profile has no GPU";
    return d;
  } catch (const std::exception& e) {  // nlohmann type errors: keep them inside the module
    return invalid_argument(cat(what, ": ", e.what()));
  }
}

std::vector<std::string> device_profile_names() {
  std::vector<std::string> names;
  for (const auto& p : kProfiles) names.push_back(p.name);
  return names;
}

Result<DeviceInfo> device_profile(const std::string& name_or_file) {
  for (const auto& p : kProfiles) {
    if (name_or_file == p.name) {
      auto d = parse_device_profile(p.json, cat("built-in profile ", p.name));
      if (!d.ok()) return internal_error(d.status().message());
      d->name = p.name;
      d->source = cat("profile ", p.name);
      return d;
    }
  }
  const bool looks_like_file = name_or_file.find('/') != std::string::npos ||
                               (name_or_file.size() > 5 && name_or_file.ends_with(".json"));
  if (looks_like_file || file_exists(name_or_file)) {
    TAILOR_ASSIGN_OR_RETURN(std::string text, read_file(name_or_file));
    TAILOR_ASSIGN_OR_RETURN(DeviceInfo d, parse_device_profile(text, name_or_file));
    if (d.name.empty()) d.name = name_or_file;
    d.source = cat("profile file ", name_or_file);
    return d;
  }
  std::string known;
  for (const auto& p : kProfiles) known += cat(known.empty() ? "" : ", ", p.name);
  return not_found(cat("unknown device profile \"", name_or_file, "\" (known: ", known,
                       "; or give the path of a JSON profile, see docs/PLAN.md)"));
}

std::string format_device_info(const DeviceInfo& d) {
  std::string s = cat("device: ", d.name, " (", d.source, ")\n");
  const CpuInfo& c = d.cpu;
  s += cat("  cpu:    ", c.model, ", ", c.cores, " cores, ", c.features.list(), "\n");
  s += cat("  memory: ", format_bytes(c.mem_total), " total, ", format_bytes(c.mem_available), " available (",
           c.mem_source, ")");
  if (c.bandwidth_gbs > 0) s += cat(", ~", int(c.bandwidth_gbs), " GB/s");
  s += "\n";
  if (d.gpus.empty()) s += cat("  gpu:    none (", d.no_gpu_reason, ")\n");
  for (const GpuInfo& g : d.gpus) {
    std::string tc;
    if (g.bf16) tc += " bf16";
    if (g.fp16) tc += " fp16";
    if (g.fp8) tc += " fp8";
    s += cat("  gpu ", g.index, ":  ", backend_name(g.backend), " ", g.name,
             g.backend == Backend::cuda ? " (" + g.arch() + ")" : std::string(), ", ",
             format_bytes(g.mem_total), " total, ", format_bytes(g.mem_free),
             g.unified_memory ? " usable" : " free");
    if (g.unified_memory) s += " (unified with host RAM)";
    if (g.bandwidth_gbs > 0)
      s += cat(", ", int(std::lround(g.bandwidth_gbs)), " GB/s (", g.bandwidth_source, ")");
    s += cat(", native:", tc.empty() ? " none" : tc, "\n");
  }
  return s;
}

std::string device_info_json(const DeviceInfo& d) {
  OrderedJson j;
  j["name"] = d.name;
  j["source"] = d.source;
  j["cpu"] = {{"model", d.cpu.model},
              {"cores", d.cpu.cores},
              {"features", d.cpu.features.list()},
              {"mem_total_bytes", d.cpu.mem_total},
              {"mem_available_bytes", d.cpu.mem_available},
              {"mem_source", d.cpu.mem_source},
              {"bandwidth_gbs", d.cpu.bandwidth_gbs}};
  j["gpus"] = OrderedJson::array();
  for (const GpuInfo& g : d.gpus) {
    j["gpus"].push_back({{"index", g.index},
                         {"backend", backend_name(g.backend)},
                         {"name", g.name},
                         {"arch", g.arch()},
                         {"mem_total_bytes", g.mem_total},
                         {"mem_free_bytes", g.mem_free},
                         {"bandwidth_gbs", g.bandwidth_gbs},
                         {"bandwidth_source", g.bandwidth_source},
                         {"unified_memory", g.unified_memory},
                         {"bf16", g.bf16},
                         {"fp16", g.fp16},
                         {"fp8", g.fp8}});
  }
  if (d.gpus.empty()) j["no_gpu_reason"] = d.no_gpu_reason;
  return j.dump(2, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace tailor

// Probing this machine: CPU model and features, the CPUs and memory this process may really use (affinity,
// cgroup v1/v2 limits: a container's limit, not the host's RAM), and CUDA devices through the runtime.
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/log.h"
#include "plan/device.h"

#ifdef TAILOR_HAS_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tailor {

namespace {

// Reads a small text file (procfs/sysfs report size 0, so no mmap); empty when missing.
std::string slurp(const std::string& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// "key<ws>: value" line of /proc/cpuinfo or "key: N kB" of /proc/meminfo.
std::optional<std::string> field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (trim(line.substr(0, colon)) == key) return trim(line.substr(colon + 1));
  }
  return std::nullopt;
}

std::optional<uint64_t> meminfo_bytes(const std::string& text, const std::string& key) {
  auto v = field(text, key);
  if (!v) return std::nullopt;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v->c_str(), &end, 10);
  if (end == v->c_str()) return std::nullopt;
  return uint64_t(n) * 1024;  // values are in kB
}

// A number in a cgroup file; nullopt for "max", missing files or the v1 "unlimited" sentinel (~2^63).
std::optional<uint64_t> cgroup_number(const std::string& path) {
  std::string s = trim(slurp(path));
  if (s.empty() || s == "max") return std::nullopt;
  char* end = nullptr;
  unsigned long long n = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str() || n >= (1ull << 60)) return std::nullopt;
  return uint64_t(n);
}

// "key N" lines of memory.stat.
uint64_t stat_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  unsigned long long v;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

std::string cpu_model(const std::string& cpuinfo) {
  for (const char* key : {"model name", "Model", "Hardware", "cpu model"})
    if (auto v = field(cpuinfo, key); v && !v->empty()) return *v;
  if (auto part = field(cpuinfo, "CPU part")) return "ARM CPU part " + *part;
  return "unknown CPU";
}

int count_processors(const std::string& cpuinfo) {
  int n = 0;
  std::istringstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("processor", 0) == 0) ++n;
  return n;
}

// The cgroup v2 path of this process ("0::/user.slice/x" -> "/user.slice/x"), "" when not v2.
std::string cgroup_v2_path(const std::string& root) {
  std::istringstream in(slurp(root + "/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return trim(line.substr(3));
  return {};
}

struct CgroupMem {
  std::optional<uint64_t> limit;     // the tightest limit on the way up
  std::optional<uint64_t> headroom;  // limit - (usage - reclaimable page cache), at that level
  std::string source;
};

CgroupMem cgroup_memory(const std::string& root) {
  CgroupMem m;
  auto consider = [&](uint64_t limit, uint64_t usage, uint64_t inactive_file, const std::string& src) {
    const uint64_t used = usage > inactive_file ? usage - inactive_file : 0;
    const uint64_t head = limit > used ? limit - used : 0;
    if (!m.headroom || head < *m.headroom) {
      m.headroom = head;
      m.limit = limit;
      m.source = src;
    }
  };
  // cgroup v2: every ancestor's memory.max applies; walk from our group up to the mount point.
  const std::string base = root + "/sys/fs/cgroup";
  if (!slurp(base + "/cgroup.controllers").empty() || !slurp(root + "/proc/self/cgroup").empty()) {
    std::string rel = cgroup_v2_path(root);
    for (;;) {
      const std::string dir = base + (rel == "/" ? "" : rel);
      if (auto lim = cgroup_number(dir + "/memory.max")) {
        const uint64_t cur = cgroup_number(dir + "/memory.current").value_or(0);
        consider(*lim, cur, stat_value(slurp(dir + "/memory.stat"), "inactive_file"),
                 "cgroup v2 " + (rel.empty() ? std::string("/") : rel) + " memory.max");
      }
      if (rel.empty() || rel == "/") break;
      auto slash = rel.find_last_of('/');
      rel = slash == 0 ? "/" : rel.substr(0, slash);
    }
  }
  // cgroup v1 (memory controller mounted on its own).
  const std::string v1 = base + "/memory";
  if (auto lim = cgroup_number(v1 + "/memory.limit_in_bytes")) {
    const uint64_t use = cgroup_number(v1 + "/memory.usage_in_bytes").value_or(0);
    consider(*lim, use, stat_value(slurp(v1 + "/memory.stat"), "total_inactive_file"),
             "cgroup v1 memory.limit_in_bytes");
  }
  return m;
}

// CPUs from a cgroup CPU quota (v2 cpu.max "quota period", v1 cfs files); 0 when unlimited.
int cgroup_cpus(const std::string& root) {
  const std::string base = root + "/sys/fs/cgroup";
  std::string rel = cgroup_v2_path(root);
  std::istringstream in(slurp(base + (rel == "/" ? "" : rel) + "/cpu.max"));
  std::string quota;
  long long period = 0;
  if (in >> quota >> period && quota != "max" && period > 0)
    return std::max(1, int(std::ceil(std::strtod(quota.c_str(), nullptr) / double(period))));
  auto q = slurp(base + "/cpu/cpu.cfs_quota_us"), p = slurp(base + "/cpu/cpu.cfs_period_us");
  const long long qv = std::strtoll(q.c_str(), nullptr, 10), pv = std::strtoll(p.c_str(), nullptr, 10);
  if (qv > 0 && pv > 0) return std::max(1, int(std::ceil(double(qv) / double(pv))));
  return 0;
}

#ifdef TAILOR_HAS_CUDA
// Peak bandwidth by name when the runtime does not report memory clock and bus width.
double bandwidth_from_table(const std::string& name) {
  struct Row {
    const char* key;
    double gbs;
  };
  static const Row rows[] = {
      {"H200", 4800},   {"H100 PCIe", 2000}, {"H100", 3350},     {"A100-SXM4-80GB", 2039},
      {"A100", 1555},   {"L40S", 864},       {"L4", 300},        {"A10", 600},
      {"T4", 320},      {"V100", 900},       {"RTX 4090", 1008}, {"RTX 3090", 936},
      {"RTX 3060", 360}};
  for (const Row& r : rows)
    if (name.find(r.key) != std::string::npos) return r.gbs;
  return 0;
}

void probe_cuda(DeviceInfo& d) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    d.no_gpu_reason = cat("CUDA runtime: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
    cudaGetLastError();  // clear the sticky error so later CUDA users start clean
    return;
  }
  if (n == 0) {
    d.no_gpu_reason = "CUDA runtime reports no device";
    return;
  }
  for (int i = 0; i < n; ++i) {
    GpuInfo g;
    g.backend = Backend::cuda;
    g.index = i;
    cudaDeviceProp p{};
    if ((e = cudaGetDeviceProperties(&p, i)) != cudaSuccess) {
      log_warn("cuda:", i, ": cudaGetDeviceProperties failed: ", cudaGetErrorString(e), "; device skipped");
      continue;
    }
    g.name = p.name;
    g.cc_major = p.major;
    g.cc_minor = p.minor;
    g.mem_total = p.totalGlobalMem;
    int clock_khz = 0, bus_bits = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, i);
    cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, i);
    if (clock_khz > 0 && bus_bits > 0) {
      // Double data rate: two transfers per clock.
      g.bandwidth_gbs = 2.0 * double(clock_khz) * 1e3 * double(bus_bits) / 8.0 / 1e9;
      g.bandwidth_source = "memory clock x bus width";
    } else if ((g.bandwidth_gbs = bandwidth_from_table(g.name)) > 0) {
      g.bandwidth_source = "table";
    } else {
      g.bandwidth_source = "unknown";
    }
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      g.mem_free = free_b;
      g.mem_total = total_b;
    } else {
      cudaGetLastError();
      g.mem_free = 0;
      log_warn("cuda:", i, ": cudaMemGetInfo failed; its free memory counts as 0");
    }
    g.fp16 = g.cc() >= 70;
    g.bf16 = g.cc() >= 80;
    g.fp8 = g.cc() >= 89;
    d.gpus.push_back(g);
  }
  if (n > 1) cudaSetDevice(0);  // leave the process on the default device
  if (d.gpus.empty()) d.no_gpu_reason = "no CUDA device could be queried";
}
#endif

}  // namespace

CpuInfo probe_cpu(const std::string& root) {
  CpuInfo c;
  c.features = cpu_features();
  const std::string cpuinfo = slurp(root + "/proc/cpuinfo");
  c.model = cpu_model(cpuinfo);

  int cores = 0;
  if (root.empty()) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
    if (cores <= 0) cores = int(std::thread::hardware_concurrency());
  } else {
    cores = count_processors(cpuinfo);
  }
  if (int q = cgroup_cpus(root); q > 0 && (cores <= 0 || q < cores)) cores = q;
  c.cores = std::max(cores, 1);

  const std::string meminfo = slurp(root + "/proc/meminfo");
  c.mem_total = meminfo_bytes(meminfo, "MemTotal").value_or(0);
  if (auto avail = meminfo_bytes(meminfo, "MemAvailable")) {
    c.mem_available = *avail;
  } else {  // kernels before 3.14: free + reclaimable page cache
    c.mem_available =
        meminfo_bytes(meminfo, "MemFree").value_or(0) + meminfo_bytes(meminfo, "Cached").value_or(0);
  }
  c.mem_source = meminfo.empty() ? "unknown (no /proc/meminfo)" : "/proc/meminfo MemAvailable";
  CgroupMem cg = cgroup_memory(root);
  if (cg.limit && (c.mem_total == 0 || *cg.limit < c.mem_total)) c.mem_total = *cg.limit;
  if (cg.headroom && (c.mem_total == 0 || *cg.headroom < c.mem_available)) {
    c.mem_available = *cg.headroom;
    c.mem_source = cg.source;
  }
  return c;
}

DeviceInfo probe_devices() {
  DeviceInfo d;
  d.source = "probe";
  d.name = "this machine";
  d.cpu = probe_cpu();
#ifdef TAILOR_HAS_CUDA
  probe_cuda(d);
#else
  d.no_gpu_reason = "tailor was built without CUDA (-DTAILOR_CUDA=OFF or no nvcc)";
#endif
  return d;
}

}  // namespace tailor

// Counters and histograms the engine updates as it works; the server renders them as Prometheus text. Every
// method is thread-safe: the engine thread writes while HTTP threads read.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace tailor {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // ascending; +Inf is implied
  void observe(double v);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative;  // [i]: observations <= upper_bounds[i]; last entry: +Inf (= count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket, +Inf last
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Finish reasons counted separately: stop, length, cancelled, constraint_dead, error.
inline constexpr int kFinishKinds = 5;
const char* finish_kind_name(int i);

struct EngineMetrics {
  std::atomic<uint64_t> requests_submitted{0};
  std::atomic<uint64_t> requests_rejected{0};  // refused because the queue was full
  std::array<std::atomic<uint64_t>, kFinishKinds> requests_finished{};
  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> generated_tokens{0};
  std::atomic<uint64_t> steps{0};        // forward passes
  std::atomic<uint64_t> step_tokens{0};  // tokens run through those passes (prompt chunks + decode)
  Histogram time_to_first_token{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};    // s
  Histogram time_per_output_token{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};  // s
  Histogram queue_time{{0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60}};                               // s
  Histogram request_duration{{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120}};                      // s
  Histogram batch_size{{1, 2, 4, 8, 16, 32, 64, 128}};  // sequences per forward pass
};

}  // namespace tailor

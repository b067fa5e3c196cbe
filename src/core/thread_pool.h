// A fixed pool of worker threads for data-parallel loops (matmul rows, attention heads).
// parallel_for blocks until all chunks are done; the calling thread takes part.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tailor {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads includes the caller; <= 0 means hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // Calls fn(begin, end) over [0, n) split in chunks of at least `grain` items.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool (sized from TAILOR_THREADS or the CPU count on first use).
  static ThreadPool& global();
  static void set_global_threads(int n);

 private:
  void worker_loop(int idx);
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  int active_ = 0;
  std::mutex call_mu_;  // one parallel_for at a time
};

int hardware_threads();

}  // namespace tailor

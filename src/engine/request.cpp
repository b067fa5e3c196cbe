#include "engine/request.h"

namespace tailor {

const char* request_end_name(RequestEnd e) {
  switch (e) {
    case RequestEnd::stop:
      return "stop";
    case RequestEnd::length:
      return "length";
    case RequestEnd::cancelled:
      return "cancelled";
    case RequestEnd::constraint_dead:
      return "constraint_dead";
    case RequestEnd::error:
      return "error";
  }
  return "unknown";
}

bool RequestHandle::next(std::vector<EngineEvent>& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (final_delivered_) return true;
  cv_.wait_for(lk, timeout, [&] { return !events_.empty(); });
  for (auto& e : events_) out.push_back(std::move(e));
  events_.clear();
  if (final_pushed_) final_delivered_ = true;
  return final_delivered_;
}

bool RequestHandle::finished() const {
  std::lock_guard<std::mutex> lk(mu_);
  return final_pushed_;
}

void RequestHandle::push_text(std::string text, int n_tokens) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (final_pushed_) return;
    if (!events_.empty() && !events_.back().done) {
      events_.back().text += text;
      events_.back().n_tokens += n_tokens;
    } else {
      EngineEvent e;
      e.text = std::move(text);
      e.n_tokens = n_tokens;
      events_.push_back(std::move(e));
    }
  }
  cv_.notify_one();
}

void RequestHandle::push_final(EngineEvent e) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (final_pushed_) return;
    e.done = true;
    events_.push_back(std::move(e));
    final_pushed_ = true;
  }
  cv_.notify_one();
}

}  // namespace tailor

// Stop strings over streamed text: text that might be the start of a stop string is held back until it is
// known not to be, so a client never sees part of a stop string, and the text before a stop string is exact
// whichever way the output was split into tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tailor {

class StopStringMatcher {
 public:
  StopStringMatcher() = default;
  explicit StopStringMatcher(std::vector<std::string> stops);  // empty strings are ignored

  // Feeds newly decoded text; returns the text that is safe to emit now. After a stop string is seen, returns
  // the text before it and stopped() becomes true (later calls return nothing).
  std::string push(std::string_view text);
  // End of output: returns whatever was held back (nothing after a stop).
  std::string flush();
  bool stopped() const { return stopped_; }
  bool empty() const { return stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // text not yet emitted: a suffix that could start a stop string
  bool stopped_ = false;
};

}  // namespace tailor

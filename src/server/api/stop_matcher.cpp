#include "server/api/stop_matcher.h"

#include <algorithm>

namespace r1 {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

StopMatch StopStringMatcher::push(std::string_view piece) {
  StopMatch out;
  if (stopped_) return out;
  held_.append(piece);

  // The stop that completes first wins: the smallest end offset, then the
  // longest (earliest start), then the first listed. This does not depend on
  // how the text was cut into pieces. A match cannot start inside text already
  // released (that text's tail would have been a stop prefix, and held), and
  // the held text had no complete match before this piece, so searching the
  // held buffer is enough.
  size_t best_pos = std::string::npos;
  size_t best_end = std::string::npos;
  size_t best_index = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    if (stops_[i].empty()) continue;
    size_t pos = held_.find(stops_[i]);
    if (pos == std::string::npos) continue;
    size_t end = pos + stops_[i].size();
    if (end < best_end || (end == best_end && pos < best_pos)) {
      best_pos = pos;
      best_end = end;
      best_index = i;
    }
  }
  if (best_pos != std::string::npos) {
    out.text = held_.substr(0, best_pos);
    out.stopped = true;
    out.stop_index = best_index;
    stopped_ = true;
    held_.clear();
    return out;
  }

  // Hold the longest tail of held_ that is a proper prefix of some stop. A
  // stop string starts with a UTF-8 lead byte, so the cut is on a character
  // boundary whenever the input is whole characters.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    size_t max_len = std::min(stop.size() - (stop.empty() ? 0 : 1), held_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (std::string_view(held_).substr(held_.size() - len) ==
          std::string_view(stop).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  out.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out;
}

std::string StopStringMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace r1

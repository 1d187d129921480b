#include "app/cli_util.h"

#include <cerrno>
#include <cstdlib>

#include "obs/log.h"

namespace r1 {

Result<std::vector<int32_t>> parse_ids_csv(const std::string& csv) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= csv.size()) {
    size_t comma = csv.find(',', pos);
    if (comma == std::string::npos) comma = csv.size();
    std::string item = csv.substr(pos, comma - pos);
    size_t b = item.find_first_not_of(" \t\n"), e = item.find_last_not_of(" \t\n");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (item.empty()) {
      if (comma == csv.size() && pos == csv.size() && !ids.empty()) break;  // trailing comma
      return invalid_argument("--ids: empty item in '" + csv + "'");
    }
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (errno != 0 || end != item.c_str() + item.size() || v < 0 || v > INT32_MAX) {
      return invalid_argument("--ids: '" + item + "' is not a token id");
    }
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return ids;
}

int report_error(const Status& status) {
  log_error(status.message());
  return 1;
}

}  // namespace r1

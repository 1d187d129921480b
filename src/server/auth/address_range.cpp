#include "server/auth/address_range.h"

#include <arpa/inet.h>

#include <cstring>

namespace r1 {

namespace {

// Parses an address; IPv4-mapped IPv6 comes back as IPv4.
bool parse_address(std::string_view text, bool* v4, std::array<uint8_t, 16>* out) {
  const std::string s(text);
  out->fill(0);
  if (inet_pton(AF_INET, s.c_str(), out->data()) == 1) {
    *v4 = true;
    return true;
  }
  std::array<uint8_t, 16> six{};
  if (inet_pton(AF_INET6, s.c_str(), six.data()) != 1) return false;
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(six.data(), kMapped, 12) == 0) {
    *v4 = true;
    std::memcpy(out->data(), six.data() + 12, 4);
    return true;
  }
  *v4 = false;
  *out = six;
  return true;
}

}  // namespace

Result<AddressRange> AddressRange::parse(std::string_view cidr) {
  while (!cidr.empty() && cidr.front() == ' ') cidr.remove_prefix(1);
  while (!cidr.empty() && cidr.back() == ' ') cidr.remove_suffix(1);
  AddressRange r;
  const size_t slash = cidr.find('/');
  if (!parse_address(cidr.substr(0, slash), &r.v4_, &r.bytes_)) {
    std::string why(cidr);
    why += " is not an IP address or CIDR range";
    return invalid_argument(why);
  }
  const int max_prefix = r.v4_ ? 32 : 128;
  r.prefix_ = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string p(cidr.substr(slash + 1));
    char* end = nullptr;
    const long n = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || n < 0 || n > max_prefix) {
      std::string why(cidr);
      why += ": prefix length must be 0.." + std::to_string(max_prefix);
      return invalid_argument(why);
    }
    r.prefix_ = static_cast<int>(n);
  }
  return r;
}

Result<std::vector<AddressRange>> AddressRange::parse_list(std::string_view text) {
  std::vector<AddressRange> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.find_first_not_of(' ') != std::string_view::npos) {
      R1_ASSIGN_OR_RETURN(AddressRange r, parse(item));
      out.push_back(r);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

bool AddressRange::contains(std::string_view address) const {
  bool v4 = false;
  std::array<uint8_t, 16> a{};
  if (!parse_address(address, &v4, &a) || v4 != v4_) return false;
  const int full = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(a.data(), bytes_.data(), static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (bytes_[full] & mask);
}

bool any_contains(const std::vector<AddressRange>& ranges, std::string_view address) {
  for (const auto& r : ranges) {
    if (r.contains(address)) return true;
  }
  return false;
}

}  // namespace r1

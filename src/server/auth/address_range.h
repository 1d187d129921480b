// An IPv4 or IPv6 network in CIDR form ("10.0.0.0/8", "::1/128", or a bare
// address), to say which peers are trusted gateways. IPv4 peers that arrive
// as IPv4-mapped IPv6 ("::ffff:10.1.2.3") match IPv4 ranges.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace r1 {

class AddressRange {
 public:
  static Result<AddressRange> parse(std::string_view cidr);
  // A comma-separated list; empty text gives an empty list.
  static Result<std::vector<AddressRange>> parse_list(std::string_view text);

  bool contains(std::string_view address) const;

 private:
  bool v4_ = false;
  std::array<uint8_t, 16> bytes_{};  // network address; IPv4 uses the first 4
  int prefix_ = 0;
};

bool any_contains(const std::vector<AddressRange>& ranges, std::string_view address);

}  // namespace r1

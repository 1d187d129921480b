// The roles a principal can hold, and which one each route needs.
#pragma once

#include <optional>
#include <string_view>

namespace r1 {

enum class Role {
  kDeveloper,  // the inference routes
  kOperator,   // model and drain administration
  kAuditor,    // reading the audit trail and usage
};

std::string_view role_name(Role role);
std::optional<Role> parse_role(std::string_view name);

}  // namespace r1

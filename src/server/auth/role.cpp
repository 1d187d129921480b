#include "server/auth/role.h"

namespace r1 {

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kDeveloper:
      return "developer";
    case Role::kOperator:
      return "operator";
    case Role::kAuditor:
      return "auditor";
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view name) {
  for (Role r : {Role::kDeveloper, Role::kOperator, Role::kAuditor}) {
    if (name == role_name(r)) return r;
  }
  return std::nullopt;
}

}  // namespace r1

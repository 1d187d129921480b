#include "server/served_model.h"

#include <algorithm>

namespace r1 {

bool ServedModel::answers_to(const std::string& model) const {
  return model == name || model == version_id() ||
         std::find(aliases.begin(), aliases.end(), model) != aliases.end();
}

}  // namespace r1

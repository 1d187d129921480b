#include "app/registry_resolve.h"

namespace r1 {

Result<ModelChoice> resolve_model(const std::string& model, const std::string& repo) {
  if (repo.empty() && !is_model_uri(model)) {
    if (model.empty()) return invalid_argument("no model: give --model DIR or a .gguf file");
    return ModelChoice{model, std::nullopt};
  }
  R1_ASSIGN_OR_RETURN(ModelRegistry registry,
                      ModelRegistry::open(repo.empty() ? default_mlflow_store() : repo));
  std::string ref = model;
  if (ref.empty()) {
    if (registry.models().size() != 1) {
      return invalid_argument(registry.source() + " holds " +
                              std::to_string(registry.models().size()) +
                              " models; name one with --model NAME (or NAME@ALIAS)");
    }
    ref = registry.models().front().name;
  }
  R1_ASSIGN_OR_RETURN(ResolvedVersion v, registry.resolve(ref));
  std::string path = v.path;
  return ModelChoice{std::move(path), std::move(v)};
}

Result<std::string> resolve_model_path(const std::string& model, const std::string& repo) {
  R1_ASSIGN_OR_RETURN(ModelChoice c, resolve_model(model, repo));
  return c.path;
}

}  // namespace r1

// What `--model` names, with or without `--model-repo`: a model folder or
// GGUF file as it is, or a registry reference (NAME, NAME@ALIAS, NAME@N,
// models:/...) resolved through the registry --model-repo points at. An
// MLflow URI without --model-repo goes through the default MLflow store
// (MLFLOW_REGISTRY_URI, MLFLOW_TRACKING_URI, ./mlruns).
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "registry/model_registry.h"

namespace r1 {

struct ModelChoice {
  std::string path;                        // the folder or file to load
  std::optional<ResolvedVersion> version;  // set when a registry chose it
};

// `model` may be empty with a registry of one model: that model's default.
Result<ModelChoice> resolve_model(const std::string& model, const std::string& repo);
Result<std::string> resolve_model_path(const std::string& model, const std::string& repo);

}  // namespace r1

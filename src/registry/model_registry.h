// A model registry: models by name, each with numbered versions and aliases
// (`production`, `staging`, any name), each version an HF folder or a GGUF
// file. Read from one of:
//   - a registry YAML file (or a folder holding `registry.yaml`):
//       models:
//         r1-distill:
//           default: production      # the alias a bare name follows
//           versions:
//             1: /models/r1-1.5b      # a path (relative: to the YAML's folder)
//             2: {path: r1-1.5b-q8.gguf}
//           aliases: {production: 1, staging: 2}
//   - an MLflow registry's local file store (`mlruns/`, or a folder holding
//     it): models/NAME/meta.yaml, models/NAME/version-N/meta.yaml (source,
//     storage_location, current_stage) and models/NAME/aliases/ALIAS
//     (the version number); deleted versions are skipped. A version's
//     location must be a local path or a file: URI.
//   - an MLflow registry in SQLite (MLflow 3's default store): a
//     sqlite:///PATH URI, the database file, or a folder holding mlflow.db;
//     the same models, versions, stages and aliases from its tables.
//   - one model folder or file (`--model DIR` without a registry): one model,
//     version 1.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace r1 {

struct RegistryVersion {
  int64_t number = 0;
  std::string path;   // the HF folder or GGUF file
  std::string stage;  // MLflow's current_stage ("Production", ...); empty otherwise
};

struct RegistryModel {
  std::string name;
  std::map<int64_t, RegistryVersion> versions;
  std::map<std::string, int64_t> aliases;
  std::string default_alias = "production";

  // The versions an alias names, in alias order.
  std::vector<std::string> aliases_of(int64_t version) const;
};

// What a reference resolved to.
struct ResolvedVersion {
  std::string model;
  int64_t version = 0;
  std::string path;
  std::vector<std::string> aliases;  // every alias naming this version
};

class ModelRegistry {
 public:
  // A registry YAML file, a folder holding registry.yaml, an MLflow file
  // store (the mlruns folder or its parent), or an MLflow database (a
  // sqlite:/// URI, the file, or a folder holding mlflow.db).
  static Result<ModelRegistry> open(const std::string& path);
  static Result<ModelRegistry> parse_yaml(const std::string& text, const std::string& base_dir,
                                          const std::string& label);
  static Result<ModelRegistry> read_mlflow(const std::string& mlruns);
  static Result<ModelRegistry> read_mlflow_db(const std::string& db_path);
  // One model named `name` whose version 1 is `path`.
  static ModelRegistry single(const std::string& name, const std::string& path);

  // A reference, in any of these forms:
  //   NAME                the model's default alias, else its latest version
  //   NAME@ALIAS, NAME@N  an alias, or version N
  //   models:/NAME/N, models:/NAME@ALIAS, models:/NAME/latest,
  //   models:/NAME/STAGE  (MLflow's URIs; a stage picks its latest version)
  // NOT_FOUND names what is missing and what the registry holds.
  Result<ResolvedVersion> resolve(const std::string& ref) const;

  const std::vector<RegistryModel>& models() const { return models_; }
  const RegistryModel* find(const std::string& name) const;
  const std::string& source() const { return source_; }

 private:
  Status add(RegistryModel model);

  std::string source_;
  std::vector<RegistryModel> models_;  // sorted by name
};

// Whether `ref` is an MLflow model URI (models:/...).
bool is_model_uri(const std::string& ref);

// Where an MLflow registry lives when none is named: MLFLOW_REGISTRY_URI,
// else MLFLOW_TRACKING_URI (file: and sqlite:/// URIs, plain paths), else
// ./mlruns if it holds models, else ./mlflow.db if it exists (MLflow 3's
// own choice), else ./mlruns.
std::string default_mlflow_store();

}  // namespace r1

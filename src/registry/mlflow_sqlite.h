// The rows of an MLflow model registry kept in SQLite (MLflow 3's default
// store, sqlite:///mlflow.db): registered models, their versions and
// aliases, read as MLflow's SQL store writes them. ModelRegistry gives
// them meaning (deleted versions, locations, stages).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace r1 {

struct MlflowVersionRow {
  std::string model;
  std::string version;
  std::string stage;             // current_stage; "Deleted_Internal" for a deleted version
  std::string source;            // as registered (a path, a URI, models:/m-...)
  std::string storage_location;  // where MLflow resolved the source to; "" in older schemas
};

struct MlflowAliasRow {
  std::string model;
  std::string alias;
  std::string version;
};

struct MlflowRows {
  std::vector<std::string> models;
  std::vector<MlflowVersionRow> versions;
  std::vector<MlflowAliasRow> aliases;
};

// Opens `db_path` read-only (waiting up to 5 s on a writer's lock) and
// reads the registry's tables. A file that is not SQLite, or a database
// without MLflow's registered_models table, is an error that says so.
Result<MlflowRows> read_mlflow_sqlite(const std::string& db_path);

// Whether `path` is a SQLite database file (its 16-byte header).
bool is_sqlite_file(const std::string& path);

}  // namespace r1

#include "registry/mlflow_sqlite.h"

#include <sqlite3.h>

#include <cstring>
#include <fstream>
#include <memory>

namespace r1 {

namespace {

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

std::string text_at(sqlite3_stmt* s, int column) {
  const unsigned char* t = sqlite3_column_text(s, column);
  return t != nullptr ? reinterpret_cast<const char*>(t) : "";
}

// Runs `sql` and hands every row to `row`; an error names the database.
template <typename Row>
Status each_row(sqlite3* db, const std::string& path, const char* sql, Row row) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return data_loss(path + ": cannot read the MLflow registry: " + sqlite3_errmsg(db));
  }
  Stmt stmt(raw);
  for (;;) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) return ok_status();
    if (rc != SQLITE_ROW) {
      return data_loss(path + ": cannot read the MLflow registry: " + sqlite3_errmsg(db));
    }
    row(stmt.get());
  }
}

Result<bool> has_table(sqlite3* db, const std::string& path, const char* table) {
  bool found = false;
  const std::string sql =
      std::string("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '") + table + "'";
  R1_RETURN_IF_ERROR(each_row(db, path, sql.c_str(), [&](sqlite3_stmt*) { found = true; }));
  return found;
}

Result<bool> has_column(sqlite3* db, const std::string& path, const char* table,
                        const char* column) {
  bool found = false;
  const std::string sql = std::string("PRAGMA table_info(") + table + ")";
  R1_RETURN_IF_ERROR(each_row(db, path, sql.c_str(), [&](sqlite3_stmt* s) {
    if (text_at(s, 1) == column) found = true;
  }));
  return found;
}

}  // namespace

bool is_sqlite_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char header[16] = {};
  if (!in.read(header, sizeof header)) return false;
  return std::memcmp(header, "SQLite format 3", 16) == 0;
}

Result<MlflowRows> read_mlflow_sqlite(const std::string& path) {
  if (!is_sqlite_file(path)) return not_found(path + ": not a SQLite database");
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) {
    return unavailable(path + ": cannot open the MLflow database: " +
                       (raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  sqlite3_busy_timeout(db.get(), 5000);  // MLflow may be writing
  R1_ASSIGN_OR_RETURN(const bool registry, has_table(db.get(), path, "registered_models"));
  if (!registry) {
    return not_found(path + ": not an MLflow database (no registered_models table)");
  }
  MlflowRows rows;
  R1_RETURN_IF_ERROR(each_row(db.get(), path, "SELECT name FROM registered_models",
                              [&](sqlite3_stmt* s) { rows.models.push_back(text_at(s, 0)); }));
  R1_ASSIGN_OR_RETURN(const bool versions, has_table(db.get(), path, "model_versions"));
  if (versions) {
    R1_ASSIGN_OR_RETURN(const bool located,
                        has_column(db.get(), path, "model_versions", "storage_location"));
    const char* sql = located ? "SELECT name, version, current_stage, source, storage_location "
                                "FROM model_versions"
                              : "SELECT name, version, current_stage, source, '' "
                                "FROM model_versions";
    R1_RETURN_IF_ERROR(each_row(db.get(), path, sql, [&](sqlite3_stmt* s) {
      rows.versions.push_back(
          {text_at(s, 0), text_at(s, 1), text_at(s, 2), text_at(s, 3), text_at(s, 4)});
    }));
  }
  R1_ASSIGN_OR_RETURN(const bool aliases, has_table(db.get(), path, "registered_model_aliases"));
  if (aliases) {
    R1_RETURN_IF_ERROR(
        each_row(db.get(), path, "SELECT name, alias, version FROM registered_model_aliases",
                 [&](sqlite3_stmt* s) {
                   rows.aliases.push_back({text_at(s, 0), text_at(s, 1), text_at(s, 2)});
                 }));
  }
  return rows;
}

}  // namespace r1

#include "server/ops/usage_ledger.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace r1 {

namespace {

using json = nlohmann::json;

std::string line_for(const UsageLedger::Key& k, const UsageTotals& t) {
  nlohmann::ordered_json j;
  j["principal"] = std::get<0>(k);
  j["model"] = std::get<1>(k);
  j["version"] = std::get<2>(k);
  j["requests"] = t.requests;
  j["prompt_tokens"] = t.prompt_tokens;
  j["completion_tokens"] = t.completion_tokens;
  j["reasoning_tokens"] = t.reasoning_tokens;
  j["cache_hits"] = t.cache_hits;
  return j.dump() + "\n";
}

// A count of a usage line: a non-negative JSON integer. A float or a negative
// number is damage (and a float past int64 has no conversion at all).
bool count_at(const json& j, const char* key, int64_t* out) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return false;
  *out = it->get<int64_t>();
  return true;
}

// A line written before versions were metered has no "version": "".
bool parse_line(const std::string& line, UsageLedger::Key* k, UsageTotals* t) {
  const json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  try {
    std::get<0>(*k) = j.at("principal").get<std::string>();
    std::get<1>(*k) = j.at("model").get<std::string>();
    std::get<2>(*k) = j.value("version", std::string());
  } catch (const json::exception&) {
    return false;
  }
  return count_at(j, "requests", &t->requests) && count_at(j, "prompt_tokens", &t->prompt_tokens) &&
         count_at(j, "completion_tokens", &t->completion_tokens) &&
         count_at(j, "reasoning_tokens", &t->reasoning_tokens) &&
         count_at(j, "cache_hits", &t->cache_hits);
}

// Counts saturate at the int64 maximum rather than wrap (a ledger file may
// hold any value up to it).
void add_count(int64_t* total, int64_t delta) {
  if (__builtin_add_overflow(*total, delta, total)) {
    *total = delta < 0 ? INT64_MIN : INT64_MAX;
  }
}

Status sync_file(std::FILE* f, const std::string& path) {
  if (std::fflush(f) != 0 || ::fdatasync(fileno(f)) != 0) {
    return unavailable("usage file " + path + ": write failed");
  }
  return ok_status();
}

}  // namespace

UsageTotals& UsageTotals::operator+=(const UsageTotals& o) {
  add_count(&requests, o.requests);
  add_count(&prompt_tokens, o.prompt_tokens);
  add_count(&completion_tokens, o.completion_tokens);
  add_count(&reasoning_tokens, o.reasoning_tokens);
  add_count(&cache_hits, o.cache_hits);
  return *this;
}

Result<std::unique_ptr<UsageLedger>> UsageLedger::open(const std::string& path) {
  auto ledger = std::unique_ptr<UsageLedger>(new UsageLedger());
  ledger->path_ = path;
  if (path.empty()) return ledger;
  {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      Key k;
      UsageTotals t;
      if (!parse_line(lines[i], &k, &t)) {
        if (i + 1 == lines.size()) break;  // torn by a crash mid-append: never acknowledged
        return data_loss("usage file " + path + ": line " + std::to_string(i + 1) +
                         " is not a usage record");
      }
      ledger->totals_[k] += t;
    }
  }
  // Compact: one line per (principal, model, version), swapped in atomically.
  const std::string tmp = path + ".tmp";
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) return unavailable("usage file " + tmp + ": cannot create it");
  for (const auto& [k, t] : ledger->totals_) {
    const std::string line = line_for(k, t);
    std::fwrite(line.data(), 1, line.size(), out);
  }
  const Status synced = sync_file(out, tmp);
  std::fclose(out);
  R1_RETURN_IF_ERROR(synced);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return unavailable("usage file " + path + ": " + ec.message());
  ledger->file_ = std::fopen(path.c_str(), "ab");
  if (ledger->file_ == nullptr) return unavailable("usage file " + path + ": cannot open it");
  return ledger;
}

UsageLedger::~UsageLedger() {
  if (file_ != nullptr) std::fclose(file_);
}

Status UsageLedger::add(const std::string& principal, const std::string& model,
                        const std::string& version, const UsageTotals& delta) {
  const Key k{principal, model, version};
  std::lock_guard<std::mutex> lock(mu_);
  totals_[k] += delta;
  if (file_ == nullptr) return ok_status();
  const std::string line = line_for(k, delta);
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) {
    return unavailable("usage file " + path_ + ": write failed");
  }
  return sync_file(file_, path_);
}

std::vector<UsageRow> UsageLedger::rows() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<UsageRow> out;
  for (const auto& [k, t] : totals_) {
    out.push_back(UsageRow{std::get<0>(k), std::get<1>(k), std::get<2>(k), t});
  }
  return out;
}

}  // namespace r1

#include "server/ops/audit_log.h"

#include <deque>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "obs/log.h"
#include "server/auth/api_key_store.h"

namespace r1 {

namespace {

// The last non-empty line of a file, or "" when there is none.
std::string last_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

// Whether the file is empty or ends with a newline.
bool ends_with_newline(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || in.tellg() <= 0) return true;
  in.seekg(-1, std::ios::end);
  return in.get() == '\n';
}

// The seq of the last record of a file that has one (0 when none has):
// records end with `,"seq":N,"prev":"...","hash":"..."}`, so it is read
// from the end of each line without parsing the line.
int64_t last_seq_in(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  int64_t seq = 0;
  for (std::string line; std::getline(in, line);) {
    const size_t prev = line.rfind(",\"prev\":\"");
    if (prev == std::string::npos) continue;
    size_t digits = prev;
    while (digits > 0 && line[digits - 1] >= '0' && line[digits - 1] <= '9') --digits;
    static constexpr std::string_view kKey = ",\"seq\":";
    if (digits == prev || digits < kKey.size() ||
        line.compare(digits - kKey.size(), kKey.size(), kKey) != 0) {
      continue;
    }
    seq = std::stoll(line.substr(digits, std::min<size_t>(prev - digits, 18)));
  }
  return seq;
}

// A record's seq; 0 for records written before records had one.
int64_t record_seq(const nlohmann::json& j) {
  const auto it = j.find("seq");
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// Replaces `path` with `text` as a whole: written aside, then renamed.
bool replace_file(const std::string& path, const std::string& text) {
  const std::string aside = path + ".tmp";
  std::FILE* f = std::fopen(aside.c_str(), "wb");
  if (f == nullptr) return false;
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !written) return false;
  std::error_code ec;
  std::filesystem::rename(aside, path, ec);
  return !ec;
}

}  // namespace

Result<AuditHead> read_audit_head(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": no head file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j["seq"].is_number_integer() ||
      !j.contains("hash") || !j["hash"].is_string()) {
    return data_loss(path + ": not an audit head ({\"seq\": N, \"hash\": \"...\"})");
  }
  return AuditHead{j["seq"].get<int64_t>(), j["hash"].get<std::string>()};
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path, int64_t max_bytes,
                                                 int keep_files) {
  auto log = std::unique_ptr<AuditLog>(new AuditLog());
  log->path_ = path;
  log->max_bytes_ = max_bytes;
  log->keep_files_ = std::max(1, keep_files);
  std::string last = last_line(path);
  if (last.empty() && std::filesystem::exists(path + ".1")) last = last_line(path + ".1");
  log->last_hash_ = kAuditGenesis;
  if (!last.empty()) {
    auto j = nlohmann::json::parse(last, nullptr, false);
    if (j.is_discarded() || !j.contains("hash") || !j["hash"].is_string()) {
      return data_loss("audit log " + path +
                       ": its last line is not an audit record; refusing "
                       "to extend a broken chain (move the file away or repair it)");
    }
    log->last_hash_ = j["hash"].get<std::string>();
    log->last_seq_ = record_seq(j);
  }
  // A head newer than the last record: records were cut off the end.
  // Extending the chain from here would hide that, so refuse. A last
  // record without seq was written by a build from before seq existed
  // (after a rollback): numbering goes on from the head.
  Result<AuditHead> head = read_audit_head(path + ".head");
  if (head.ok() && !last.empty() && log->last_seq_ == 0) {
    log->last_seq_ = std::max(head->seq, last_seq_in(path));
  } else if (head.ok() && (head->seq > log->last_seq_ ||
                           (head->seq == log->last_seq_ && head->hash != log->last_hash_))) {
    return data_loss("audit log " + path + ": " + path + ".head names record " +
                     std::to_string(head->seq) + " but the log ends at record " +
                     std::to_string(log->last_seq_) +
                     "; records are missing from its end (run r1serve audit-verify, then move "
                     "the files away)");
  }
  log->file_ = std::fopen(path.c_str(), "ab");
  if (log->file_ == nullptr) return unavailable("audit log " + path + ": cannot open for append");
  std::error_code ec;
  log->size_ = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  // A last record without its newline (a copy cut short, an editor) would
  // get the next record appended to its line, breaking the chain: end the
  // line first (verify_audit_chain skips empty lines).
  if (log->size_ > 0 && !ends_with_newline(path)) {
    if (std::fputc('\n', log->file_) == EOF || std::fflush(log->file_) != 0) {
      return unavailable("audit log " + path + ": write failed");
    }
    ++log->size_;
  }
  return log;
}

AuditLog::~AuditLog() {
  if (file_ != nullptr) std::fclose(file_);
}

Status AuditLog::rotate() {
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  std::filesystem::remove(path_ + "." + std::to_string(keep_files_), ec);
  for (int i = keep_files_ - 1; i >= 1; --i) {
    const std::string from = path_ + "." + std::to_string(i);
    if (std::filesystem::exists(from)) {
      std::filesystem::rename(from, path_ + "." + std::to_string(i + 1), ec);
    }
  }
  std::filesystem::rename(path_, path_ + ".1", ec);
  file_ = std::fopen(path_.c_str(), "ab");
  size_ = 0;
  if (file_ == nullptr) return unavailable("audit log " + path_ + ": cannot reopen after rotation");
  return ok_status();
}

std::vector<std::string> AuditLog::tail(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);  // every write is flushed under it
  std::ifstream in(path_, std::ios::binary);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    last.push_back(std::move(line));
    if (last.size() > n) last.pop_front();
  }
  return {last.begin(), last.end()};
}

Status AuditLog::write(const AuditRecord& r) {
  nlohmann::ordered_json j;
  j["time"] = r.time;
  j["event"] = r.event;
  j["request_id"] = r.request_id;
  j["principal"] = r.principal;
  j["role"] = r.role;
  j["route"] = r.route;
  j["model"] = r.model;
  j["version"] = r.version;
  j["status"] = r.status;
  j["prompt_tokens"] = r.prompt_tokens;
  j["completion_tokens"] = r.completion_tokens;
  j["reasoning_tokens"] = r.reasoning_tokens;
  j["cache_hit"] = r.cache_hit;
  j["client"] = r.client;
  if (!r.source.empty()) j["source"] = r.source;
  if (!r.prompt.empty()) j["prompt"] = r.prompt;
  if (!r.resumes.empty()) j["resumes"] = r.resumes;
  std::lock_guard<std::mutex> lock(mu_);
  j["seq"] = last_seq_ + 1;
  j["prev"] = last_hash_;
  // hash = SHA-256 of the line up to `,"hash":` (which includes prev), so a
  // changed byte anywhere in a record breaks that record's own hash.
  std::string body = j.dump();
  body.pop_back();  // the closing brace
  const std::string hash = sha256_hex(body);
  const std::string line = body + ",\"hash\":\"" + hash + "\"}";
  if (max_bytes_ > 0 && size_ > 0 && size_ + static_cast<int64_t>(line.size()) + 1 > max_bytes_) {
    R1_RETURN_IF_ERROR(rotate());
  }
  if (file_ == nullptr) return unavailable("audit log " + path_ + " is not open");
  const std::string out = line + "\n";
  if (std::fwrite(out.data(), 1, out.size(), file_) != out.size() || std::fflush(file_) != 0) {
    return unavailable("audit log " + path_ + ": write failed");
  }
  size_ += static_cast<int64_t>(out.size());
  last_hash_ = hash;
  last_seq_ += 1;
  // The record is written; a head that cannot be replaced only lags (which
  // audit-verify accepts), so it is reported once, not as a failed write.
  const nlohmann::json head = {{"seq", last_seq_}, {"hash", hash}};
  const bool anchored = replace_file(path_ + ".head", head.dump() + "\n");
  if (!anchored && !head_failed_) {
    log_warning("audit log " + path_ + ": cannot write " + path_ +
                ".head; the end of the chain is not anchored until it can");
  }
  head_failed_ = !anchored;
  return ok_status();
}

Status verify_audit_chain(const std::vector<std::string>& paths, const std::string& head_path) {
  std::string expected_prev;  // empty: the first record (may continue a rotated-away chain)
  int64_t record = 0;
  int64_t last_seq = 0;  // of the last record that has one
  std::string last_hash;
  std::string last_where = "the start";
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return not_found("audit log " + path + ": cannot open it");
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      ++record;
      const std::string where =
          path + " line " + std::to_string(line_no) + " (record " + std::to_string(record) + ")";
      const size_t at = line.rfind(",\"hash\":\"");
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (at == std::string::npos || j.is_discarded() || !j.is_object() || !j.contains("prev") ||
          !j["prev"].is_string() || !j.contains("hash") || !j["hash"].is_string()) {
        return data_loss("broken chain at " + where + ": not an audit record");
      }
      if (sha256_hex(line.substr(0, at)) != j["hash"].get<std::string>()) {
        return data_loss("broken chain at " + where + ": the record was altered");
      }
      if (!expected_prev.empty() && j["prev"].get<std::string>() != expected_prev) {
        return data_loss("broken chain at " + where +
                         ": its prev does not match the record before it (one is missing or "
                         "out of order)");
      }
      const int64_t seq = record_seq(j);
      if (seq > 0 && last_seq > 0 && seq != last_seq + 1) {
        return data_loss("broken chain at " + where + ": seq " + std::to_string(seq) +
                         " follows seq " + std::to_string(last_seq));
      }
      expected_prev = j["hash"].get<std::string>();
      if (seq > 0) {  // records from before seq existed do not move the end
        last_seq = seq;
        last_hash = expected_prev;
        last_where = where;
      }
    }
  }
  const std::string head_file =
      !head_path.empty() ? head_path : (paths.empty() ? "" : paths.back() + ".head");
  if (head_file.empty()) return ok_status();
  Result<AuditHead> head = read_audit_head(head_file);
  if (!head.ok()) {
    // Without a head the end cannot be checked; one that was asked for must exist.
    return head.status().code() == StatusCode::kNotFound && head_path.empty() ? ok_status()
                                                                              : head.status();
  }
  if (head->seq > last_seq) {
    return data_loss("the chain ends at " + last_where + " (seq " + std::to_string(last_seq) +
                     ") but " + head_file + " names seq " + std::to_string(head->seq) + ": " +
                     std::to_string(head->seq - last_seq) + " record(s) are missing from the end");
  }
  // A head behind the chain's end only lags (a crash between a record and
  // its head, or a head that could not be written): the records it does
  // not cover are checked by the chain alone.
  if (head->seq < last_seq) return ok_status();
  if (head->hash != last_hash) {
    return data_loss("the last record, " + last_where + ", is not the one " + head_file +
                     " names (same seq, another hash)");
  }
  return ok_status();
}

}  // namespace r1

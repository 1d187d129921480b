// libFuzzer target: the readers of the server's own append-only files, which
// an operator may hand back damaged (a crash mid-write, an edit, a copy cut
// short). Byte 0 picks the reader, the rest is written to files:
//   even: the audit trail. The text, split at NUL bytes, becomes FILE.1
//         and FILE (one rotation), and FILE.head when there is a third part;
//         verify_audit_chain (the code behind `r1serve audit-verify`) checks
//         them, AuditLog::open continues the chain from FILE, appends a
//         record and reads its tail.
//   odd:  the usage ledger. The text is the ledger file; UsageLedger::open
//         sums and compacts it, takes one more call, and the compacted file
//         is opened again.
// Properties: errors explain themselves; an intact chain opens, and stays
// intact after a record is appended; reopening a compacted ledger gives the
// same totals.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "server/ops/audit_log.h"
#include "server/ops/usage_ledger.h"

namespace {

const std::string& work_dir() {
  static const std::string dir = [] {
    char p[] = "/dev/shm/r1serve-ledger-fuzz-XXXXXX";
    if (mkdtemp(p) == nullptr) std::abort();
    return std::string(p);
  }();
  return dir;
}

void write_file(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

void audit(std::string_view text) {
  const std::string path = work_dir() + "/audit.jsonl";
  const std::string head = path + ".head";
  std::vector<std::string_view> parts;
  for (size_t at = 0; parts.size() < 2;) {
    const size_t nul = text.find('\0', at);
    if (nul == std::string_view::npos) break;
    parts.push_back(text.substr(at, nul - at));
    at = nul + 1;
    if (parts.size() == 1 && text.find('\0', at) == std::string_view::npos) {
      parts.push_back(text.substr(at));
      break;
    }
  }
  if (parts.empty()) parts.push_back(text);
  std::vector<std::string> files;
  std::remove((path + ".1").c_str());
  std::remove(head.c_str());
  if (parts.size() == 1) {
    write_file(path, parts[0]);
  } else {
    write_file(path + ".1", parts[0]);
    files.push_back(path + ".1");
    write_file(path, parts[1]);
  }
  files.push_back(path);
  // A third part is the head file.
  size_t used = 0;
  for (std::string_view p : parts) used += p.size() + 1;
  const bool with_head = parts.size() == 2 && used <= text.size();
  if (with_head) write_file(head, text.substr(used));
  (void)r1::read_audit_head(head);

  const r1::Status before = r1::verify_audit_chain(files, with_head ? head : "");
  if (!before.ok() && before.message().empty()) std::abort();
  auto log = r1::AuditLog::open(path);
  if (!log.ok()) {
    if (log.status().message().empty()) std::abort();
    if (before.ok() && !with_head) std::abort();  // an intact chain can be continued
    return;
  }
  r1::AuditRecord record;
  record.time = "2026-12-06T00:00:00Z";
  record.event = "call";
  record.principal = "fuzz";
  record.route = "/v1/chat/completions";
  record.status = 200;
  if (!(*log)->write(record).ok()) std::abort();
  if ((*log)->tail(2).empty()) std::abort();
  log->reset();
  const r1::Status after = r1::verify_audit_chain(files, head);
  if (before.ok() && !after.ok()) std::abort();
}

using UsageTuple =
    std::tuple<std::string, std::string, std::string, int64_t, int64_t, int64_t, int64_t, int64_t>;

std::vector<UsageTuple> totals(const r1::UsageLedger& ledger) {
  std::vector<UsageTuple> out;
  for (const r1::UsageRow& r : ledger.rows()) {
    out.emplace_back(r.principal, r.model, r.version, r.totals.requests, r.totals.prompt_tokens,
                     r.totals.completion_tokens, r.totals.reasoning_tokens, r.totals.cache_hits);
  }
  return out;
}

void usage(std::string_view text) {
  const std::string path = work_dir() + "/usage.jsonl";
  write_file(path, text);
  auto ledger = r1::UsageLedger::open(path);
  if (!ledger.ok()) {
    if (ledger.status().message().empty()) std::abort();
    return;
  }
  if (!(*ledger)->add("fuzz", "tiny", "1", r1::UsageTotals{1, 10, 20, 5, 0}).ok()) std::abort();
  const auto first = totals(**ledger);
  ledger->reset();
  auto again = r1::UsageLedger::open(path);
  if (!again.ok() || totals(**again) != first) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    audit(text);
  } else {
    usage(text);
  }
  return 0;
}

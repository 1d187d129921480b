// Entries as files in a directory, for replicas that share a volume (NFS,
// EFS, Filestore, a hostPath) instead of Redis. One file per key, holding
// its expiry time (unix seconds) on the first line and the value after it.
// A put writes a temporary file and renames it over the entry, so a reader
// sees the old value or the new one, never a torn one, and a process killed
// mid-write leaves at most a stray temporary file. Expired entries read as
// absent and are deleted when met; puts sweep the directory of expired
// entries and stale temporary files now and then. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "server/ops/cache_store.h"

namespace r1 {

class DirectoryStore final : public CacheStore {
 public:
  // Creates `dir` if needed; an error when it cannot be created or written.
  static Result<std::unique_ptr<DirectoryStore>> open(const std::string& dir);

  Result<std::optional<std::string>> get(const std::string& key) override;
  Status put(const std::string& key, const std::string& value, int64_t ttl_seconds) override;
  Status remove(const std::string& key) override;
  const char* kind() const override { return "directory"; }

 private:
  explicit DirectoryStore(std::string dir) : dir_(std::move(dir)) {}
  std::string path_of(const std::string& key) const;
  void sweep();

  std::string dir_;
  std::atomic<int64_t> puts_{0};
};

}  // namespace r1

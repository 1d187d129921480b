#include "server/ops/directory_store.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace r1 {

namespace {

namespace fs = std::filesystem;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool valid_key(const std::string& key) {
  return !key.empty() && key.size() <= 128 && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// The expiry on a file's first line; nullopt when the file is not an entry.
std::optional<int64_t> expiry_of(std::istream& in) {
  std::string line;
  if (!std::getline(in, line) || line.empty() || line.size() > 20) return std::nullopt;
  if (!std::all_of(line.begin(), line.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoll(line);
}

}  // namespace

Result<std::unique_ptr<DirectoryStore>> DirectoryStore::open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return unavailable("checkpoint directory " + dir + ": " + ec.message());
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return unavailable("checkpoint directory " + dir + ": not writable");
  }
  return std::unique_ptr<DirectoryStore>(new DirectoryStore(dir));
}

std::string DirectoryStore::path_of(const std::string& key) const {
  return dir_ + "/" + key + ".entry";
}

Result<std::optional<std::string>> DirectoryStore::get(const std::string& key) {
  if (!valid_key(key)) return invalid_argument("bad store key");
  const std::string path = path_of(key);
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::optional<std::string>();
  const std::optional<int64_t> expires = expiry_of(in);
  if (!expires || *expires <= unix_now()) {
    std::error_code ec;
    fs::remove(path, ec);  // expired, or not an entry
    return std::optional<std::string>();
  }
  std::stringstream value;
  value << in.rdbuf();
  if (in.bad()) return unavailable("checkpoint directory " + dir_ + ": cannot read " + path);
  return std::optional<std::string>(value.str());
}

Status DirectoryStore::put(const std::string& key, const std::string& value, int64_t ttl_seconds) {
  if (!valid_key(key)) return invalid_argument("bad store key");
  const int64_t n = puts_.fetch_add(1);
  if ((n & 255) == 0) sweep();
  const std::string path = path_of(key);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << (unix_now() + ttl_seconds) << '\n' << value;
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return unavailable("checkpoint directory " + dir_ + ": cannot write " + tmp);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return unavailable("checkpoint directory " + dir_ + ": cannot rename " + tmp);
  }
  return ok_status();
}

Status DirectoryStore::remove(const std::string& key) {
  if (!valid_key(key)) return invalid_argument("bad store key");
  std::error_code ec;
  fs::remove(path_of(key), ec);
  if (ec) return unavailable("checkpoint directory " + dir_ + ": " + ec.message());
  return ok_status();
}

void DirectoryStore::sweep() {
  const int64_t now = unix_now();
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code drop;
    if (name.find(".entry.tmp.") != std::string::npos) {
      // A writer that died mid-put; live writers rename within milliseconds.
      const auto age = fs::file_time_type::clock::now() - fs::last_write_time(it->path(), drop);
      if (!drop && age > std::chrono::minutes(10)) fs::remove(it->path(), drop);
      continue;
    }
    if (name.size() < 6 || name.compare(name.size() - 6, 6, ".entry") != 0) continue;
    std::ifstream in(it->path(), std::ios::binary);
    const std::optional<int64_t> expires = expiry_of(in);
    if (expires && *expires <= now) fs::remove(it->path(), drop);
  }
}

}  // namespace r1

#include "registry/manifest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "obs/log.h"
#include "obs/progress.h"

namespace r1 {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kFolderManifest = "r1serve-manifest.json";
constexpr const char* kFileManifestSuffix = ".r1serve-manifest.json";
constexpr size_t kReadBytes = size_t{8} << 20;

std::string hex(const unsigned char* p, unsigned n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

// One running SHA-256.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx_.get(), p, n); }
  // The digest so far as hex; the hash starts again.
  std::string finish() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
    return hex(md, n);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// An open file read with pread.
class FileReader {
 public:
  static Result<FileReader> open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return not_found(path + ": cannot open: " + std::strerror(errno));
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return FileReader(fd, path);
  }
  FileReader(FileReader&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  FileReader& operator=(FileReader&&) = delete;
  ~FileReader() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Feeds bytes [offset, offset + length) to fn(data, n) in pieces.
  template <typename Fn>
  Status read(int64_t offset, int64_t length, std::vector<unsigned char>& buf, Fn&& fn) const {
    buf.resize(kReadBytes);
    while (length > 0) {
      const size_t want = static_cast<size_t>(std::min<int64_t>(length, kReadBytes));
      const ssize_t got = ::pread(fd_, buf.data(), want, offset);
      if (got < 0) return data_loss(path_ + ": read failed: " + std::strerror(errno));
      if (got == 0) return data_loss(path_ + ": ends early, at byte " + std::to_string(offset));
      fn(buf.data(), static_cast<size_t>(got));
      offset += got;
      length -= got;
    }
    return ok_status();
  }

 private:
  FileReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

bool is_folder_member(const fs::directory_entry& e) {
  const std::string name = e.path().filename().string();
  return e.is_regular_file() && !name.empty() && name[0] != '.' && name != kFolderManifest;
}

// The folder the manifest's relative paths start from.
fs::path manifest_base(const std::string& model_path) {
  return fs::is_directory(model_path) ? fs::path(model_path) : fs::path(model_path).parent_path();
}

std::string relative_to(const fs::path& base, const std::string& file) {
  return fs::path(file).lexically_relative(base.empty() ? fs::path(".") : base).generic_string();
}

int64_t n_chunks(int64_t bytes, int64_t chunk_bytes) {
  return std::max<int64_t>(1, (bytes + chunk_bytes - 1) / chunk_bytes);
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

Result<VerifyMode> parse_verify_mode(const std::string& text) {
  if (text == "full") return VerifyMode::kFull;
  if (text == "sample") return VerifyMode::kSample;
  if (text == "off") return VerifyMode::kOff;
  if (text == "auto") return VerifyMode::kAuto;
  return invalid_argument("--verify-weights: " + text + " is not one of full, sample, off, auto");
}

std::string manifest_path(const std::string& model_path) {
  if (fs::is_directory(model_path)) return (fs::path(model_path) / kFolderManifest).string();
  return model_path + kFileManifestSuffix;
}

Result<std::vector<std::string>> version_files(const std::string& model_path) {
  std::error_code ec;
  std::vector<std::string> out;
  if (fs::is_directory(model_path, ec)) {
    for (const fs::directory_entry& e : fs::directory_iterator(model_path, ec)) {
      if (is_folder_member(e)) out.push_back(e.path().string());
    }
    if (ec) return not_found(model_path + ": cannot list: " + ec.message());
  } else if (is_gguf_path(model_path)) {
    R1_ASSIGN_OR_RETURN(std::shared_ptr<GgufModel> model, GgufModel::open(model_path));
    for (const auto& f : model->files()) out.push_back(f->path());
  } else if (fs::is_regular_file(model_path, ec)) {
    out.push_back(model_path);
  } else {
    return not_found(model_path + ": no such model folder or file");
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<Manifest> build_manifest(const std::string& model_path, int64_t chunk_bytes) {
  if (chunk_bytes < (int64_t{1} << 20)) {
    return invalid_argument("manifest chunks must be at least 1 MiB");
  }
  R1_ASSIGN_OR_RETURN(std::vector<std::string> files, version_files(model_path));
  const fs::path base = manifest_base(model_path);
  Manifest m;
  m.chunk_bytes = chunk_bytes;
  int64_t total = 0;
  for (const std::string& f : files) total += static_cast<int64_t>(fs::file_size(f));
  Progress progress("hashing " + model_path, total);
  std::vector<unsigned char> buf;
  for (const std::string& f : files) {
    ManifestFile entry;
    entry.path = relative_to(base, f);
    entry.bytes = static_cast<int64_t>(fs::file_size(f));
    R1_ASSIGN_OR_RETURN(FileReader reader, FileReader::open(f));
    Sha256 whole, chunk;
    const bool chunked = n_chunks(entry.bytes, chunk_bytes) > 1;
    for (int64_t off = 0; off < entry.bytes; off += chunk_bytes) {
      const int64_t n = std::min(chunk_bytes, entry.bytes - off);
      R1_RETURN_IF_ERROR(reader.read(off, n, buf, [&](const unsigned char* p, size_t k) {
        whole.update(p, k);
        if (chunked) chunk.update(p, k);
        progress.add(static_cast<int64_t>(k));
      }));
      if (chunked) entry.chunks.push_back(chunk.finish());
    }
    entry.sha256 = whole.finish();
    m.files.push_back(std::move(entry));
  }
  progress.finish();
  return m;
}

std::string manifest_json(const Manifest& m) {
  json files = json::array();
  for (const ManifestFile& f : m.files) {
    json e = {{"path", f.path}, {"bytes", f.bytes}, {"sha256", f.sha256}};
    if (!f.chunks.empty()) e["chunks"] = f.chunks;
    files.push_back(std::move(e));
  }
  const json doc = {{"r1serve_manifest", 1},
                    {"algorithm", "sha256"},
                    {"chunk_bytes", m.chunk_bytes},
                    {"files", std::move(files)}};
  return doc.dump(1) + "\n";
}

Result<Manifest> parse_manifest(const std::string& text, const std::string& label) {
  const json doc = json::parse(text, nullptr, false);
  auto bad = [&](const std::string& why) { return data_loss(label + ": " + why); };
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  if (doc.value("r1serve_manifest", json()) != json(1)) {
    return bad("\"r1serve_manifest\": 1 expected (not an r1serve manifest, or a newer one)");
  }
  if (doc.value("algorithm", json()) != json("sha256")) return bad("\"algorithm\" must be sha256");
  Manifest m;
  const json& cb = doc.value("chunk_bytes", json());
  if (!cb.is_number_integer() || cb.get<int64_t>() < (int64_t{1} << 20)) {
    return bad("\"chunk_bytes\" must be an integer of at least 1 MiB");
  }
  m.chunk_bytes = cb.get<int64_t>();
  const json& files = doc.value("files", json());
  if (!files.is_array()) return bad("\"files\" must be an array");
  std::set<std::string> seen;
  for (const json& f : files) {
    if (!f.is_object() || !f.value("path", json()).is_string() ||
        !f.value("bytes", json()).is_number_integer() || !f.value("sha256", json()).is_string()) {
      return bad("each file needs \"path\" (string), \"bytes\" (integer) and \"sha256\"");
    }
    ManifestFile e;
    e.path = f["path"].get<std::string>();
    e.bytes = f["bytes"].get<int64_t>();
    e.sha256 = f["sha256"].get<std::string>();
    const fs::path p(e.path);
    if (e.path.empty() || p.is_absolute() ||
        std::any_of(p.begin(), p.end(), [](const fs::path& c) { return c == ".."; })) {
      return bad("file path " + e.path + " must be relative and inside the manifest's folder");
    }
    if (e.bytes < 0 || !is_hex64(e.sha256)) {
      return bad(e.path + ": bytes must be >= 0 and sha256 64 lowercase hex digits");
    }
    if (f.contains("chunks")) {
      if (!f["chunks"].is_array()) return bad(e.path + ": \"chunks\" must be an array");
      for (const json& c : f["chunks"]) {
        if (!c.is_string() || !is_hex64(c.get<std::string>())) {
          return bad(e.path + ": every chunk hash must be 64 lowercase hex digits");
        }
        e.chunks.push_back(c.get<std::string>());
      }
    }
    const int64_t want = n_chunks(e.bytes, m.chunk_bytes);
    if (!e.chunks.empty() && static_cast<int64_t>(e.chunks.size()) != want) {
      return bad(e.path + ": " + std::to_string(e.chunks.size()) + " chunk hashes for " +
                 std::to_string(want) + " chunks");
    }
    if (!seen.insert(e.path).second) return bad(e.path + " is listed twice");
    m.files.push_back(std::move(e));
  }
  return m;
}

Result<Manifest> write_manifest(const std::string& model_path, int64_t chunk_bytes) {
  R1_ASSIGN_OR_RETURN(Manifest m, build_manifest(model_path, chunk_bytes));
  const std::string path = manifest_path(model_path);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << manifest_json(m);
    if (!out.flush()) return invalid_argument(tmp + ": cannot write");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return invalid_argument(path + ": cannot write: " + ec.message());
  return m;
}

Result<std::string> sha256_file_range(const std::string& path, int64_t offset, int64_t length) {
  R1_ASSIGN_OR_RETURN(FileReader reader, FileReader::open(path));
  Sha256 h;
  std::vector<unsigned char> buf;
  R1_RETURN_IF_ERROR(
      reader.read(offset, length, buf, [&](const unsigned char* p, size_t n) { h.update(p, n); }));
  return h.finish();
}

Status verify_version(const std::string& model_path, VerifyMode mode) {
  if (mode == VerifyMode::kOff) return ok_status();
  std::error_code exists_ec;
  if (!fs::exists(model_path, exists_ec)) {
    return not_found(model_path + ": no such model folder or file");
  }
  const std::string mpath = manifest_path(model_path);
  std::ifstream in(mpath, std::ios::binary);
  if (!in) {
    if (mode == VerifyMode::kAuto) {
      log_info(model_path + ": no manifest (" + mpath + "); weights not verified");
      return ok_status();
    }
    return not_found(model_path + ": no manifest at " + mpath +
                     " to verify against; write one with `r1serve manifest " + model_path + "`");
  }
  std::stringstream text;
  text << in.rdbuf();
  R1_ASSIGN_OR_RETURN(Manifest m, parse_manifest(text.str(), mpath));
  const bool sample = mode == VerifyMode::kSample;

  // The same set of files, each of the recorded size.
  R1_ASSIGN_OR_RETURN(std::vector<std::string> files, version_files(model_path));
  const fs::path base = manifest_base(model_path);
  std::set<std::string> present;
  for (const std::string& f : files) present.insert(relative_to(base, f));
  for (const ManifestFile& f : m.files) {
    if (present.erase(f.path) == 0) {
      return data_loss(model_path + ": " + f.path + " is in the manifest but missing");
    }
  }
  if (!present.empty()) {
    return data_loss(model_path + ": " + *present.begin() +
                     " is not in the manifest (a file added since it was written); write a new "
                     "manifest if it belongs to this version");
  }
  for (const ManifestFile& f : m.files) {
    std::error_code ec;
    const auto size = static_cast<int64_t>(fs::file_size(base / f.path, ec));
    if (ec) return data_loss(model_path + ": " + f.path + ": " + ec.message());
    if (size != f.bytes) {
      return data_loss(model_path + ": " + f.path + " is " + std::to_string(size) +
                       " bytes, the manifest says " + std::to_string(f.bytes) +
                       " (truncated or replaced)");
    }
  }

  // What to hash: whole files, or for `sample` a few chunks of each.
  struct Piece {
    const ManifestFile* file;
    int64_t offset, length;
    const std::string* want;
  };
  std::vector<Piece> pieces;
  std::mt19937_64 rng(std::random_device{}());
  for (const ManifestFile& f : m.files) {
    const int64_t n = n_chunks(f.bytes, m.chunk_bytes);
    if (!sample || f.chunks.empty()) {
      pieces.push_back({&f, 0, f.bytes, &f.sha256});
      continue;
    }
    std::vector<int64_t> picks = {0, n - 1};
    std::vector<int64_t> middle;
    for (int64_t i = 1; i + 1 < n; ++i) middle.push_back(i);
    std::shuffle(middle.begin(), middle.end(), rng);
    middle.resize(static_cast<size_t>((static_cast<int64_t>(middle.size()) + 15) / 16));
    picks.insert(picks.end(), middle.begin(), middle.end());
    std::sort(picks.begin(), picks.end());
    picks.erase(std::unique(picks.begin(), picks.end()), picks.end());
    for (int64_t i : picks) {
      const int64_t off = i * m.chunk_bytes;
      pieces.push_back({&f, off, std::min(m.chunk_bytes, f.bytes - off), &f.chunks[i]});
    }
  }
  int64_t total = 0;
  for (const Piece& p : pieces) total += p.length;
  Progress progress(std::string(sample ? "sampling " : "verifying ") + model_path, total);
  std::vector<unsigned char> buf;
  for (const Piece& p : pieces) {
    R1_ASSIGN_OR_RETURN(FileReader reader, FileReader::open((base / p.file->path).string()));
    Sha256 h;
    R1_RETURN_IF_ERROR(reader.read(p.offset, p.length, buf, [&](const unsigned char* d, size_t n) {
      h.update(d, n);
      progress.add(static_cast<int64_t>(n));
    }));
    const std::string got = h.finish();
    if (got != *p.want) {
      const bool whole = p.offset == 0 && p.length == p.file->bytes;
      return data_loss(model_path + ": " + p.file->path + ": SHA-256 mismatch" +
                       (whole ? ""
                              : " in bytes " + std::to_string(p.offset) + ".." +
                                    std::to_string(p.offset + p.length)) +
                       " (file " + got.substr(0, 16) + "..., manifest " + p.want->substr(0, 16) +
                       "...): the file is corrupt or was changed");
    }
  }
  progress.finish();
  return ok_status();
}

}  // namespace r1

// Integrity manifests of model versions: the SHA-256 of every file a
// version is made of (weights, tokenizer, config), written by `r1serve
// manifest` and checked when a version is loaded.
//
// A version is an HF folder (every regular file directly in it, except the
// manifest and dot files; subfolders are not part of it) or a GGUF file
// (with every part of a split set). The manifest lies beside it:
//   DIR/r1serve-manifest.json           for a folder
//   FILE.gguf.r1serve-manifest.json     for a GGUF file (the first part)
// Paths inside are relative to the manifest's folder. Files larger than one
// chunk (64 MiB unless written otherwise) also carry a hash per chunk, so
// `sample` can check a few chunks of a 15 GB version instead of all of it.
//
// Format (JSON):
//   {"r1serve_manifest": 1, "algorithm": "sha256", "chunk_bytes": N,
//    "files": [{"path": "model.safetensors", "bytes": B, "sha256": "hex",
//               "chunks": ["hex", ...]}, ...]}
// "chunks" is present only for files of more than one chunk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace r1 {

struct ManifestFile {
  std::string path;  // relative to the manifest's folder
  int64_t bytes = 0;
  std::string sha256;               // 64 lowercase hex digits
  std::vector<std::string> chunks;  // per chunk_bytes, when more than one
};

struct Manifest {
  int64_t chunk_bytes = int64_t{64} << 20;
  std::vector<ManifestFile> files;  // sorted by path
};

enum class VerifyMode {
  kAuto,    // full when a manifest exists; nothing (and a log line) when none
  kFull,    // every byte of every file
  kSample,  // every size, plus the first, the last and a random 1/16 of the
            // other chunks of each file: catches truncation and most damage,
            // not a deliberate edit of an unsampled chunk
  kOff,
};
Result<VerifyMode> parse_verify_mode(const std::string& text);  // full, sample, off, auto

// Where the manifest of the version at `model_path` lives.
std::string manifest_path(const std::string& model_path);

// The files the version at `model_path` is made of, as absolute paths.
Result<std::vector<std::string>> version_files(const std::string& model_path);

// Hashes every file of the version (with progress) into a manifest.
Result<Manifest> build_manifest(const std::string& model_path,
                                int64_t chunk_bytes = int64_t{64} << 20);

std::string manifest_json(const Manifest& m);
// Parses a manifest; `label` names it in errors.
Result<Manifest> parse_manifest(const std::string& text, const std::string& label);

// Writes build_manifest's result to manifest_path(model_path).
Result<Manifest> write_manifest(const std::string& model_path,
                                int64_t chunk_bytes = int64_t{64} << 20);

// Checks the version at `model_path` against its manifest. Errors name the
// file: a file missing, one not in the manifest, a size that differs
// (truncated or replaced), a hash that differs (corrupt or changed): all
// DATA_LOSS. No manifest: kAuto passes, kFull and kSample are NOT_FOUND
// (asked for, cannot be done). Shows progress while hashing.
Status verify_version(const std::string& model_path, VerifyMode mode);

// SHA-256 of bytes [offset, offset + length) of a file, as hex.
Result<std::string> sha256_file_range(const std::string& path, int64_t offset, int64_t length);

}  // namespace r1

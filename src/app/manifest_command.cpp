// `r1serve manifest PATH`: writes the SHA-256 manifest of a model version
// (an HF folder, or a GGUF file with its split parts) beside it.
// `r1serve verify PATH [--mode full|sample]`: checks the version against it.
// Either PATH may also be a registry reference (NAME@ALIAS, models:/...)
// with --model-repo, or an MLflow URI resolved through the default store.
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/registry_resolve.h"
#include "registry/manifest.h"

namespace r1 {

void add_manifest_command(CLI::App& app, int* exit_code) {
  struct Args {
    std::string path, repo;
    int64_t chunk_mib = 64;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("manifest", "Write the SHA-256 manifest of a model version beside it");
  cmd->add_option("path", a->path, "model folder or .gguf file (or a registry reference)")
      ->required();
  cmd->add_option("--model-repo", a->repo, "registry to resolve a reference through");
  cmd->add_option("--chunk-mib", a->chunk_mib,
                  "MiB per chunk hash (what `--verify-weights sample` checks a few of)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->callback([a, exit_code] {
    Result<std::string> path = resolve_model_path(a->path, a->repo);
    if (!path.ok()) {
      *exit_code = report_error(path.status());
      return;
    }
    Result<Manifest> m = write_manifest(*path, a->chunk_mib << 20);
    if (!m.ok()) {
      *exit_code = report_error(m.status());
      return;
    }
    int64_t bytes = 0;
    for (const ManifestFile& f : m->files) bytes += f.bytes;
    std::printf("%s: %zu files, %lld bytes\n", manifest_path(*path).c_str(), m->files.size(),
                static_cast<long long>(bytes));
  });
}

void add_verify_command(CLI::App& app, int* exit_code) {
  struct Args {
    std::string path, repo, mode = "full";
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("verify", "Check a model version's files against its manifest");
  cmd->add_option("path", a->path, "model folder or .gguf file (or a registry reference)")
      ->required();
  cmd->add_option("--model-repo", a->repo, "registry to resolve a reference through");
  cmd->add_option("--mode", a->mode, "full (every byte) or sample (sizes and some chunks)")
      ->check(CLI::IsMember({"full", "sample"}));
  cmd->callback([a, exit_code] {
    Result<std::string> path = resolve_model_path(a->path, a->repo);
    Status s = path.status();
    if (s.ok())
      s = verify_version(*path, a->mode == "full" ? VerifyMode::kFull : VerifyMode::kSample);
    if (!s.ok()) {
      *exit_code = report_error(s);
      return;
    }
    std::printf("ok: %s matches %s\n", path->c_str(), manifest_path(*path).c_str());
  });
}

}  // namespace r1

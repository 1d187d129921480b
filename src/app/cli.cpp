#include "app/cli.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "app/commands.h"
#include "app/config_layers.h"

namespace r1 {

int run_cli(int argc, char** argv) {
  CLI::App app{"r1serve: inference server for the DeepSeek-R1 distilled models"};
  app.require_subcommand(1);
  int exit_code = 0;
  add_make_test_model_command(app, &exit_code);
  add_generate_command(app, &exit_code);
  add_tokenize_command(app, &exit_code);
  add_inspect_command(app, &exit_code);
  add_manifest_command(app, &exit_code);
  add_verify_command(app, &exit_code);
  add_score_command(app, &exit_code);
  add_serve_command(app, &exit_code);
  add_bench_command(app, &exit_code);
  add_perplexity_command(app, &exit_code);
  add_audit_verify_command(app, &exit_code);
  std::vector<std::string> args(argv, argv + argc);
  for (const CLI::App* cmd : app.get_subcommands([](CLI::App*) { return true; })) {
    if (cmd->get_option_no_throw("--config") == nullptr) continue;
    Result<std::vector<std::string>> layered = apply_config_layers(*cmd, args, process_env());
    if (!layered.ok()) {
      std::fprintf(stderr, "r1serve: error: %s\n", layered.status().message().c_str());
      return 1;
    }
    args = std::move(*layered);
  }
  // CLI11 takes a vector in reverse order, program name dropped.
  std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // Out of memory or threads for what was asked: an error, not an abort.
    std::fprintf(stderr, "r1serve: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}

}  // namespace r1

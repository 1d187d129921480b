#include "app/cli.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "app/commands.h"

namespace r1 {

int run_cli(int argc, char** argv) {
  CLI::App app{"r1serve: inference server for the DeepSeek-R1 distilled models"};
  app.require_subcommand(1);
  int exit_code = 0;
  add_make_test_model_command(app, &exit_code);
  add_generate_command(app, &exit_code);
  add_tokenize_command(app, &exit_code);
  add_score_command(app, &exit_code);
  add_serve_command(app, &exit_code);
  add_bench_command(app, &exit_code);
  try {
    app.parse(argc, argv);
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

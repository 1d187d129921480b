#include "app/cli.h"

#include <CLI/CLI.hpp>

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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace r1

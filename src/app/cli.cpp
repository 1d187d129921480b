#include "app/cli.h"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace r1 {

int run_cli(int argc, char** argv) {
  CLI::App app{"r1serve: inference server for the DeepSeek-R1 distilled models"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}

}  // namespace r1

// r1serve: thin entry point; the subcommands live in app/commands.
#include "app/cli.h"

int main(int argc, char** argv) {
  return r1::run_cli(argc, argv);
}

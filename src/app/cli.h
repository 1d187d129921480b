// The r1serve command line: subcommand parsing and dispatch.
#pragma once

namespace r1 {

// Returns the process exit status. Errors go to stderr.
int run_cli(int argc, char** argv);

}  // namespace r1

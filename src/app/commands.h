// The subcommands of the r1serve binary. Each add_* registers one on the CLI
// app; its callback stores the process exit status in *exit_code.
#pragma once

#include <CLI/CLI.hpp>

namespace r1 {

void add_make_test_model_command(CLI::App& app, int* exit_code);
void add_generate_command(CLI::App& app, int* exit_code);
void add_tokenize_command(CLI::App& app, int* exit_code);
void add_score_command(CLI::App& app, int* exit_code);
void add_serve_command(CLI::App& app, int* exit_code);
void add_bench_command(CLI::App& app, int* exit_code);
void add_perplexity_command(CLI::App& app, int* exit_code);
void add_audit_verify_command(CLI::App& app, int* exit_code);
void add_inspect_command(CLI::App& app, int* exit_code);
void add_manifest_command(CLI::App& app, int* exit_code);
void add_verify_command(CLI::App& app, int* exit_code);

}  // namespace r1

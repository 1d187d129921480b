// `r1serve tokenize`: JSON strings in, one per line on stdin; JSON arrays of
// ids out, one per line (Hugging Face encode(text, add_special_tokens=False)).
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "format/gguf.h"
#include "model/model_folder.h"
#include "tokenizer/tokenizer.h"

namespace r1 {

namespace {

Status run_tokenize(const std::string& model) {
  R1_ASSIGN_OR_RETURN(Tokenizer tok,
                      is_gguf_path(model) ? open_gguf_tokenizer(model) : Tokenizer::load(model));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_string()) {
      return invalid_argument("stdin line " + std::to_string(line_no) + ": expected a JSON string");
    }
    auto ids = tok.encode(j.get<std::string>(), /*add_special_tokens=*/false);
    if (!ids.ok()) return ids.status().with_context("stdin line " + std::to_string(line_no));
    std::cout << nlohmann::json(*ids).dump() << "\n";
  }
  std::cout.flush();
  return ok_status();
}

}  // namespace

void add_tokenize_command(CLI::App& app, int* exit_code) {
  auto model = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode JSON strings read from stdin");
  cmd->add_option("--model", *model, "model folder (tokenizer.json) or .gguf file")->required();
  cmd->callback([model, exit_code] {
    Status s = run_tokenize(*model);
    if (!s.ok()) *exit_code = report_error(s);
  });
}

}  // namespace r1

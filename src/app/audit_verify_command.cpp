// `r1serve audit-verify FILE... [--head HEAD]`: checks an audit trail's
// hash chain (oldest file first when rotated: FILE.2 FILE.1 FILE) and its
// end against the head (FILE.head, or a copy kept elsewhere). Exit 0 and
// "ok" when intact; exit 1 naming the first broken record, or the records
// missing from the end, otherwise.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "server/ops/audit_log.h"

namespace r1 {

void add_audit_verify_command(CLI::App& app, int* exit_code) {
  auto files = std::make_shared<std::vector<std::string>>();
  auto head = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("audit-verify", "Check an audit log's hash chain");
  cmd->add_option("files", *files, "audit log files, oldest first")->required();
  cmd->add_option("--head", *head,
                  "head file to check the end against (default: the last file's FILE.head when "
                  "it exists)");
  cmd->callback([files, head, exit_code] {
    const Status s = verify_audit_chain(*files, *head);
    if (!s.ok()) {
      *exit_code = report_error(s);
      return;
    }
    std::printf("ok: the chain is intact\n");
  });
}

}  // namespace r1

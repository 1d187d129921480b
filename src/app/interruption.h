// The serve command's spot-safe settings: where generations in flight are
// checkpointed (a Redis shared by the replicas, or a shared directory), how
// often, and where an interruption notice comes from besides SIGTERM (a
// cloud's instance metadata: AWS spot instance-action, GCP preempted).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "core/status.h"
#include "obs/metrics.h"
#include "server/api/resumption.h"

namespace r1 {

struct InterruptionArgs {
  std::string checkpoint_store = "off";  // off, redis://..., unix:/path.sock, or a directory
  int64_t checkpoint_every = 16;
  int64_t checkpoint_ttl = 3600;
  std::string spot_notice = "off";  // off, aws or gcp
  std::string spot_metadata_url;    // "" = the cloud's own address
  double spot_poll_interval = 5.0;
};

void add_interruption_options(CLI::App* cmd, InterruptionArgs* a);

// The checkpoint store; null when off.
Result<std::unique_ptr<Resumption>> make_resumption(const InterruptionArgs& a, Metrics* metrics);

// Polls a cloud's instance metadata for an interruption notice and calls
// `on_notice` once, from its own thread, when there is one.
//   aws: PUT /latest/api/token (IMDSv2), then GET
//        /latest/meta-data/spot/instance-action: 404 until the instance is
//        to be reclaimed, then {"action": ..., "time": ...}.
//   gcp: GET /computeMetadata/v1/instance/preempted (Metadata-Flavor:
//        Google): "TRUE" once the instance is preempted.
// An endpoint that cannot be reached is logged (once until it answers
// again), never taken for a notice.
class SpotNoticeWatcher {
 public:
  enum class Cloud { kAws, kGcp };
  SpotNoticeWatcher(Cloud cloud, std::string base_url, double poll_seconds,
                    std::function<void(const std::string& notice)> on_notice);
  ~SpotNoticeWatcher();  // stops polling
  SpotNoticeWatcher(const SpotNoticeWatcher&) = delete;
  SpotNoticeWatcher& operator=(const SpotNoticeWatcher&) = delete;

  // One poll: the notice when there is one, nullopt when there is none.
  Result<std::optional<std::string>> poll();

 private:
  void loop();

  Cloud cloud_;
  std::string base_url_;
  double poll_seconds_;
  std::function<void(const std::string&)> on_notice_;
  std::string aws_token_;  // IMDSv2 session token; refreshed when refused
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

// The watcher `a` asks for (null when off), or an error for a bad setting.
Result<std::unique_ptr<SpotNoticeWatcher>> make_spot_watcher(
    const InterruptionArgs& a, std::function<void(const std::string&)> on_notice);

}  // namespace r1

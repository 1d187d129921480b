#include "app/interruption.h"

#include <cctype>

#include <nlohmann/json.hpp>

#include "app/config_layers.h"
#include "obs/log.h"
#include "server/http/http_client.h"
#include "server/ops/directory_store.h"
#include "server/ops/redis_cache_store.h"

namespace r1 {

void add_interruption_options(CLI::App* cmd, InterruptionArgs* a) {
  const std::string group = "Spot-safe serving";
  cmd->add_option("--checkpoint-store", a->checkpoint_store,
                  "where generations in flight are checkpointed so another replica can resume "
                  "them: off, redis://[:password@]host[:port][/db], unix:/path/redis.sock, or a "
                  "directory shared by the replicas")
      ->group(kSecretsGroup);  // a Redis URL may carry its password
  cmd->add_option("--checkpoint-every", a->checkpoint_every,
                  "checkpoint every N output tokens (a hard kill loses at most N); 0: only on "
                  "an interruption notice")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))
      ->group(group);
  cmd->add_option("--checkpoint-ttl", a->checkpoint_ttl, "seconds a checkpoint is kept")
      ->check(CLI::Range(int64_t{1}, int64_t{7} * 24 * 3600))
      ->group(group);
  cmd->add_option("--spot-notice", a->spot_notice,
                  "poll the cloud's instance metadata for an interruption notice: off, aws "
                  "(spot instance-action, IMDSv2) or gcp (preempted)")
      ->check(CLI::IsMember({"off", "aws", "gcp"}))
      ->group(group);
  cmd->add_option("--spot-metadata-url", a->spot_metadata_url,
                  "the metadata endpoint (default http://169.254.169.254 for aws, "
                  "http://metadata.google.internal for gcp)")
      ->group(group);
  cmd->add_option("--spot-poll-interval", a->spot_poll_interval, "seconds between metadata polls")
      ->check(CLI::Range(0.05, 3600.0))
      ->group(group);
}

Result<std::unique_ptr<Resumption>> make_resumption(const InterruptionArgs& a, Metrics* metrics) {
  if (a.checkpoint_store.empty() || a.checkpoint_store == "off") {
    return std::unique_ptr<Resumption>();
  }
  std::unique_ptr<CacheStore> store;
  std::string where;
  const std::string& s = a.checkpoint_store;
  if (s.rfind("redis://", 0) == 0 || s.rfind("unix:", 0) == 0) {
    R1_ASSIGN_OR_RETURN(RedisAddress addr, parse_redis_address(s));
    where = "Redis at " + addr.describe();
    store = std::make_unique<RedisCacheStore>(addr, 500, "r1serve:checkpoint:");
  } else {
    R1_ASSIGN_OR_RETURN(store, DirectoryStore::open(s));
    where = "directory " + s;
  }
  log_info("checkpoints of generations in flight: " + where + ", every " +
           (a.checkpoint_every > 0 ? std::to_string(a.checkpoint_every) + " tokens"
                                   : std::string("interruption notice only")) +
           ", kept " + std::to_string(a.checkpoint_ttl) + " s");
  return std::make_unique<Resumption>(
      std::move(store), ResumptionOptions{a.checkpoint_every, a.checkpoint_ttl}, metrics);
}

SpotNoticeWatcher::SpotNoticeWatcher(Cloud cloud, std::string base_url, double poll_seconds,
                                     std::function<void(const std::string&)> on_notice)
    : cloud_(cloud),
      base_url_(std::move(base_url)),
      poll_seconds_(poll_seconds),
      on_notice_(std::move(on_notice)) {
  thread_ = std::thread([this] { loop(); });
}

SpotNoticeWatcher::~SpotNoticeWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Result<std::optional<std::string>> SpotNoticeWatcher::poll() {
  R1_ASSIGN_OR_RETURN(HttpClient client, HttpClient::create(base_url_));
  if (cloud_ == Cloud::kGcp) {
    R1_ASSIGN_OR_RETURN(HttpClientResponse r,
                        client.send("GET", "/computeMetadata/v1/instance/preempted",
                                    {{"Metadata-Flavor", "Google"}}));
    if (r.status != 200) {
      return unavailable("GCP metadata answered " + std::to_string(r.status));
    }
    std::string v = r.body;
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    if (v == "TRUE") return std::optional<std::string>("GCP preempted the instance");
    return std::optional<std::string>();
  }
  // AWS IMDSv2: a session token, then the spot instance-action document.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (aws_token_.empty()) {
      R1_ASSIGN_OR_RETURN(HttpClientResponse t,
                          client.send("PUT", "/latest/api/token",
                                      {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}}));
      if (t.status != 200 || t.body.empty()) {
        return unavailable("AWS metadata token request answered " + std::to_string(t.status));
      }
      aws_token_ = t.body;
    }
    R1_ASSIGN_OR_RETURN(HttpClientResponse r,
                        client.send("GET", "/latest/meta-data/spot/instance-action",
                                    {{"X-aws-ec2-metadata-token", aws_token_}}));
    if (r.status == 401) {  // the token expired: get another
      aws_token_.clear();
      continue;
    }
    if (r.status == 404) return std::optional<std::string>();
    if (r.status != 200) {
      return unavailable("AWS instance-action answered " + std::to_string(r.status));
    }
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    std::string action = "an interruption", when;
    if (j.is_object()) {
      if (j.contains("action") && j["action"].is_string()) action = j["action"].get<std::string>();
      if (j.contains("time") && j["time"].is_string()) when = " at " + j["time"].get<std::string>();
    }
    return std::optional<std::string>("AWS spot instance-action: " + action + when);
  }
  return unavailable("AWS metadata refused two fresh tokens");
}

void SpotNoticeWatcher::loop() {
  bool reported_down = false;
  for (;;) {
    auto got = poll();
    if (!got.ok()) {
      if (!reported_down) log_warning("spot notice: " + got.status().message());
      reported_down = true;
    } else {
      if (reported_down) log_info("spot notice: the metadata endpoint answers again");
      reported_down = false;
      if (got->has_value()) {
        on_notice_(**got);
        return;
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, std::chrono::duration<double>(poll_seconds_),
                     [this] { return stop_; })) {
      return;
    }
  }
}

Result<std::unique_ptr<SpotNoticeWatcher>> make_spot_watcher(
    const InterruptionArgs& a, std::function<void(const std::string&)> on_notice) {
  if (a.spot_notice == "off") return std::unique_ptr<SpotNoticeWatcher>();
  const bool aws = a.spot_notice == "aws";
  std::string url = a.spot_metadata_url;
  if (url.empty()) url = aws ? "http://169.254.169.254" : "http://metadata.google.internal";
  R1_RETURN_IF_ERROR(HttpClient::create(url).status());
  log_info("watching " + url + " for a " + (aws ? "spot instance-action" : "preemption") +
           " every " + std::to_string(a.spot_poll_interval) + " s");
  return std::make_unique<SpotNoticeWatcher>(
      aws ? SpotNoticeWatcher::Cloud::kAws : SpotNoticeWatcher::Cloud::kGcp, url,
      a.spot_poll_interval, std::move(on_notice));
}

}  // namespace r1

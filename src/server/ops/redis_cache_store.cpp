#include "server/ops/redis_cache_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <memory>

#include "core/clock.h"
#include "obs/log.h"

namespace r1 {

namespace {

timeval to_timeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

// hiredis writes with write(): to a Redis that died that raises SIGPIPE,
// which would end the process. Blocked on this thread for the call; one
// that arrived meanwhile is taken off the thread before unblocking.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_, old_;
};

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

bool parse_int(const std::string& s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 6) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

std::string RedisAddress::describe() const {
  if (!socket_path.empty()) return "unix:" + socket_path;
  return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Result<RedisAddress> parse_redis_address(const std::string& url) {
  RedisAddress a;
  const auto bad = [](const std::string& why) {
    return invalid_argument("Redis address: " + why +
                            " (expected redis://[:password@]host[:port][/db] or unix:/path)");
  };
  if (url.rfind("unix:", 0) == 0) {
    std::string path = url.substr(5);
    if (path.rfind("//", 0) == 0) path = path.substr(2);
    if (path.empty() || path[0] != '/') return bad("a unix socket needs an absolute path");
    a.socket_path = path;
    return a;
  }
  if (url.rfind("redis://", 0) != 0) return bad("unknown scheme");
  std::string rest = url.substr(8);
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    std::string user_info = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = user_info.find(':');
    a.password = colon == std::string::npos ? user_info : user_info.substr(colon + 1);
  }
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty() && !parse_int(db, 0, 1 << 16, &a.db)) return bad("bad database number");
  }
  if (const size_t colon = rest.rfind(':'); colon != std::string::npos && rest.back() != ']') {
    if (!parse_int(rest.substr(colon + 1), 1, 65535, &a.port)) return bad("bad port");
    rest = rest.substr(0, colon);
  }
  if (rest.size() > 2 && rest.front() == '[' && rest.back() == ']') {
    rest = rest.substr(1, rest.size() - 2);
  }
  if (rest.empty()) return bad("no host");
  a.host = rest;
  return a;
}

RedisCacheStore::RedisCacheStore(RedisAddress address, int timeout_ms, std::string prefix)
    : address_(std::move(address)), timeout_ms_(timeout_ms), prefix_(std::move(prefix)) {}

RedisCacheStore::~RedisCacheStore() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

void RedisCacheStore::drop(const std::string& why) {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  retry_at_ = steady_seconds() + backoff_;
  backoff_ = std::min(backoff_ * 2, 5.0);
  if (!reported_down_) {
    reported_down_ = true;
    log_warning("Redis at " + address_.describe() + " (" + prefix_ + "*)" + " unavailable (" + why +
                "); serving without the shared cache until it is back");
  }
}

Status RedisCacheStore::ensure_connected() {
  if (ctx_ != nullptr) return ok_status();
  if (steady_seconds() < retry_at_) return unavailable("Redis is down; retrying later");
  const timeval tv = to_timeval(timeout_ms_);
  ctx_ = address_.socket_path.empty()
             ? redisConnectWithTimeout(address_.host.c_str(), address_.port, tv)
             : redisConnectUnixWithTimeout(address_.socket_path.c_str(), tv);
  if (ctx_ == nullptr || ctx_->err != 0) {
    const std::string why = ctx_ ? ctx_->errstr : "cannot allocate a context";
    drop(why);
    return unavailable("Redis connect: " + why);
  }
  redisSetTimeout(ctx_, tv);
  if (!address_.password.empty()) {
    Reply r(static_cast<redisReply*>(redisCommand(ctx_, "AUTH %s", address_.password.c_str())));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      drop(r ? "AUTH refused" : ctx_->errstr);
      return unavailable("Redis AUTH failed");
    }
  }
  if (address_.db != 0) {
    Reply r(static_cast<redisReply*>(redisCommand(ctx_, "SELECT %d", address_.db)));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      drop(r ? "SELECT refused" : ctx_->errstr);
      return unavailable("Redis SELECT failed");
    }
  }
  backoff_ = 0.25;
  if (reported_down_) {
    reported_down_ = false;
    log_info("Redis at " + address_.describe() + " (" + prefix_ + "*) is back");
  }
  return ok_status();
}

Result<std::optional<std::string>> RedisCacheStore::get(const std::string& key) {
  const std::string k = prefix_ + key;
  std::lock_guard<std::mutex> lock(mu_);
  SigpipeGuard no_sigpipe;
  R1_RETURN_IF_ERROR(ensure_connected());
  Reply r(static_cast<redisReply*>(redisCommand(ctx_, "GET %b", k.data(), k.size())));
  if (!r) {
    const std::string why = ctx_->errstr;
    drop(why);
    return unavailable("Redis GET: " + why);
  }
  if (r->type == REDIS_REPLY_NIL) return std::optional<std::string>();
  if (r->type != REDIS_REPLY_STRING) return unavailable("Redis GET: unexpected reply");
  return std::optional<std::string>(std::string(r->str, r->len));
}

Status RedisCacheStore::put(const std::string& key, const std::string& value, int64_t ttl_seconds) {
  const std::string k = prefix_ + key;
  const long long ttl_ms = static_cast<long long>(ttl_seconds) * 1000;
  std::lock_guard<std::mutex> lock(mu_);
  SigpipeGuard no_sigpipe;
  R1_RETURN_IF_ERROR(ensure_connected());
  Reply r(static_cast<redisReply*>(redisCommand(ctx_, "SET %b %b PX %lld", k.data(), k.size(),
                                                value.data(), value.size(), ttl_ms)));
  if (!r) {
    const std::string why = ctx_->errstr;
    drop(why);
    return unavailable("Redis SET: " + why);
  }
  if (r->type == REDIS_REPLY_ERROR) return unavailable("Redis SET: " + std::string(r->str));
  return ok_status();
}

Status RedisCacheStore::remove(const std::string& key) {
  const std::string k = prefix_ + key;
  std::lock_guard<std::mutex> lock(mu_);
  SigpipeGuard no_sigpipe;
  R1_RETURN_IF_ERROR(ensure_connected());
  Reply r(static_cast<redisReply*>(redisCommand(ctx_, "DEL %b", k.data(), k.size())));
  if (!r) {
    const std::string why = ctx_->errstr;
    drop(why);
    return unavailable("Redis DEL: " + why);
  }
  if (r->type == REDIS_REPLY_ERROR) return unavailable("Redis DEL: " + std::string(r->str));
  return ok_status();
}

}  // namespace r1

// The response cache: the in-process LRU (expiry on an injected clock, byte
// cap, eviction order), the canonical key, and the Redis store against a
// real redis-server started here on a unix socket (stopped, restarted: the
// store reports errors while it is down and comes back by itself).
#include <gtest/gtest.h>

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "server/ops/memory_cache_store.h"
#include "server/ops/redis_cache_store.h"
#include "server/ops/response_cache.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

TEST(MemoryCacheStoreTest, ExpiresOnTheClock) {
  double now = 100;
  MemoryCacheStore store(1 << 20, [&] { return now; });
  ASSERT_TRUE(store.put("k", "v", 10).ok());
  EXPECT_EQ(store.get("k")->value(), "v");
  now = 109.9;
  EXPECT_EQ(store.get("k")->value(), "v");
  now = 110;
  EXPECT_FALSE(store.get("k")->has_value());
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.bytes(), 0);
}

TEST(MemoryCacheStoreTest, EvictsLeastRecentlyUsedWithinTheByteCap) {
  // Each entry is 1 + 9 = 10 bytes; the cap holds three.
  MemoryCacheStore store(30, [] { return 0.0; });
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(store.put(k, "123456789", 60).ok());
  EXPECT_EQ(store.bytes(), 30);
  ASSERT_TRUE(store.get("a")->has_value());  // a is now the most recent
  ASSERT_TRUE(store.put("d", "123456789", 60).ok());
  EXPECT_FALSE(store.get("b")->has_value()) << "b was least recently used";
  EXPECT_TRUE(store.get("a")->has_value());
  EXPECT_TRUE(store.get("c")->has_value());
  EXPECT_TRUE(store.get("d")->has_value());
  EXPECT_EQ(store.bytes(), 30);
  // Replacing a key replaces its bytes; a value over the cap is not kept.
  ASSERT_TRUE(store.put("a", "1", 60).ok());
  EXPECT_EQ(store.bytes(), 22);
  ASSERT_TRUE(store.put("huge", std::string(100, 'x'), 60).ok());
  EXPECT_FALSE(store.get("huge")->has_value());
  EXPECT_EQ(store.bytes(), 22);
}

TEST(ResponseCacheTest, KeyIsCanonicalAndCoversWhatChangesTheAnswer) {
  const json a = json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}],
                                  "temperature":0})");
  const json b = json::parse(R"({"temperature":0,"messages":[{"content":"hi","role":"user"}],
                                  "model":"m","user":"someone","stream":false})");
  const std::string k = ResponseCache::key_for("v1", "/v1/chat/completions", a);
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k, ResponseCache::key_for("v1", "/v1/chat/completions", b));
  EXPECT_NE(k, ResponseCache::key_for("v2", "/v1/chat/completions", a));
  EXPECT_NE(k, ResponseCache::key_for("v1", "/v1/completions", a));
  json c = a;
  c["max_tokens"] = 5;
  EXPECT_NE(k, ResponseCache::key_for("v1", "/v1/chat/completions", c));
  c = a;
  c["messages"][0]["content"] = "hi ";
  EXPECT_NE(k, ResponseCache::key_for("v1", "/v1/chat/completions", c));
}

TEST(ResponseCacheTest, StoresBodiesWithTheirUsage) {
  ResponseCache cache(std::make_unique<MemoryCacheStore>(1 << 20), 60);
  EXPECT_FALSE(cache.lookup("k").answer);
  ASSERT_TRUE(cache.store("k", CachedAnswer{"{\"x\":1}", 7, 5, 3}));
  auto got = cache.lookup("k");
  ASSERT_TRUE(got.answer);
  EXPECT_FALSE(got.error);
  EXPECT_EQ(got.answer->body, "{\"x\":1}");
  EXPECT_EQ(got.answer->prompt_tokens, 7);
  EXPECT_EQ(got.answer->completion_tokens, 5);
  EXPECT_EQ(got.answer->reasoning_tokens, 3);
}

TEST(RedisAddressTest, ParsesUrlsAndHidesThePassword) {
  auto a = parse_redis_address("redis://:s3cret@cache.internal:6380/2");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->host, "cache.internal");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 2);
  EXPECT_EQ(a->password, "s3cret");
  EXPECT_EQ(a->describe().find("s3cret"), std::string::npos);
  a = parse_redis_address("redis://localhost");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 6379);
  a = parse_redis_address("unix:/run/redis.sock");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->socket_path, "/run/redis.sock");
  for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:99999", "unix:rel"}) {
    EXPECT_FALSE(parse_redis_address(bad).ok()) << bad;
  }
}

// A redis-server child on a unix socket in a temporary folder.
class RedisServer {
 public:
  explicit RedisServer(fs::path dir) : dir_(std::move(dir)) {}
  ~RedisServer() { stop(); }
  std::string socket() const { return (dir_ / "redis.sock").string(); }
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string sock = socket(), d = dir_.string();
      ::execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock.c_str(), "--dir",
               d.c_str(), "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile",
               (d + "/redis.log").c_str(), "--loglevel", "warning", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Ready once it answers PING.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (redisContext* c = redisConnectUnix(socket().c_str()); c != nullptr) {
        const bool up = c->err == 0;
        redisFree(c);
        if (up) return true;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) return false;  // exec failed
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
};

class RedisCacheStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("r1-redis-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    redis_ = std::make_unique<RedisServer>(dir_);
    ASSERT_TRUE(redis_->start()) << "redis-server (Debian's redis-server package) did not start";
  }
  void TearDown() override {
    redis_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<RedisServer> redis_;
};

TEST_F(RedisCacheStoreTest, StoresWithExpiryAndSurvivesRedisRestarts) {
  RedisAddress addr;
  addr.socket_path = redis_->socket();
  RedisCacheStore store(addr);
  EXPECT_FALSE(store.get("missing")->has_value());
  ASSERT_TRUE(store.put("k1", std::string("bin\0ary", 7), 30).ok());
  auto got = store.get("k1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value(), std::string("bin\0ary", 7));
  // The entry carries its TTL in Redis (read back with Redis's own client).
  redisContext* c = redisConnectUnix(redis_->socket().c_str());
  ASSERT_TRUE(c && c->err == 0);
  auto* ttl = static_cast<redisReply*>(redisCommand(c, "PTTL r1serve:cache:k1"));
  ASSERT_NE(ttl, nullptr);
  EXPECT_GT(ttl->integer, 25000);
  EXPECT_LE(ttl->integer, 30000);
  freeReplyObject(ttl);
  redisFree(c);
  // A second store (another replica) sees the entry.
  RedisCacheStore replica(addr);
  EXPECT_EQ(replica.get("k1")->value(), std::string("bin\0ary", 7));

  // Redis dies: errors, quickly, never a hang.
  redis_->stop();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(store.get("k1").ok());
  EXPECT_FALSE(store.put("k2", "v", 30).ok());
  EXPECT_FALSE(store.get("k1").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));

  // Back (empty, as nothing was persisted): the store reconnects by itself
  // once its back-off has passed.
  ASSERT_TRUE(redis_->start());
  bool reconnected = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!reconnected && std::chrono::steady_clock::now() < deadline) {
    reconnected = store.put("k3", "again", 30).ok();
    if (!reconnected) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(reconnected);
  EXPECT_EQ(store.get("k3")->value(), "again");
  EXPECT_FALSE(store.get("k1")->has_value());
}

TEST(RedisCacheStoreDownTest, AnUnreachableServerIsAnErrorNotAHang) {
  RedisAddress addr;
  addr.socket_path = "/nonexistent/redis.sock";
  RedisCacheStore store(addr, 100);
  EXPECT_FALSE(store.get("k").ok());
  ResponseCache cache(std::make_unique<RedisCacheStore>(addr, 100), 60);
  const ResponseCache::Lookup l = cache.lookup("k");
  EXPECT_TRUE(l.error);
  EXPECT_FALSE(l.answer);
  EXPECT_FALSE(cache.store("k", CachedAnswer{"{}", 1, 1, 0}));
}

}  // namespace
}  // namespace r1

// `r1serve serve`: load the model, start the engine thread and the HTTP
// server; SIGTERM/SIGINT drain (503 for new requests, in-flight ones finish
// within --drain-timeout) and exit 0.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/config_layers.h"
#include "app/guardrails_setup.h"
#include "app/interruption.h"
#include "app/loaded_model.h"
#include "app/registry_resolve.h"
#include "app/version_loader.h"
#include "format/gguf.h"
#include "model/cpu_backend.h"
#include "obs/access_log.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "registry/manifest.h"
#include "server/auth/authenticator.h"
#include "server/model_table.h"
#include "server/openai_server.h"
#include "server/ops/audit_log.h"

namespace r1 {

namespace {

struct ServeArgs {
  std::string config;
  bool print_config = false;
  std::string model;
  std::string model_repo;
  std::string verify_weights = "auto";
  std::string host = "127.0.0.1";
  int port = 8000;
  int threads = 0;
  int http_threads = 0;        // 0 = http_threads_for(max_seqs, max_queue)
  int64_t kv_cache_bytes = 0;  // 0 = a fraction of available memory
  double kv_cache_fraction = 0.25;
  int32_t max_batched_tokens = 2048;
  int32_t max_seqs = 256;
  int32_t max_queue = 1024;
  std::string served_model_name;
  double drain_timeout = 30.0;
  int32_t max_reasoning_tokens = -1;
  std::string access_log;
  uint64_t seed = 0;
  size_t max_body_bytes = 8u << 20;
  int max_json_depth = 64;
  ConnectionLimits connections;         // n_workers and max_per_client set below
  int max_connections_per_client = -1;  // -1 = http_threads_for(max_seqs, max_queue)
  TlsOptions tls;
  int64_t max_model_len = 0;  // 0 = the model's max_position_embeddings
  std::string scheduling_policy = "fcfs";
  PrecisionArgs precision;
  DeviceArgs device;
  bool special_tokens_in_messages = false;
  GuardrailArgs guard;
  InterruptionArgs interruption;
};

// HTTP workers: every request the engine may hold (running or queued) keeps
// its connection's worker for its whole life, so the workers cover them all,
// with room for probes, metrics and requests that are refused at once. Idle
// workers cost a stack reservation each. The same number bounds one client
// address's open connections by default: no client can use more at once.
int http_threads_for(int32_t max_seqs, int32_t max_queue) {
  const int64_t want = int64_t{max_seqs} + max_queue + 64;
  return static_cast<int>(std::min<int64_t>(want, 8192));
}

// SIGHUP with a registry: reads it again, and where a served model's
// default alias (production unless configured) now names another version,
// activates that one (loaded next to the old, which unloads once its
// requests end). A registry that cannot be read leaves everything as it was.
void follow_registry(VersionLoader& versions, const ModelTable& table, OpenAiServer& server) {
  if (Status s = versions.reload_registry(); !s.ok()) {
    log_error("SIGHUP: keeping the previous registry: " + s.message());
    return;
  }
  log_info("SIGHUP: reread the model registry");
  for (const ModelTable::ModelView& m : table.models()) {
    Result<std::string> want = versions.default_version(m.name);
    if (!want.ok()) {
      log_error("SIGHUP: model " + m.name + ": " + want.status().message());
      continue;
    }
    if (m.active && m.active->version == *want && !m.canary) continue;
    auto done = server.activate(m.name, *want, 100, "SIGHUP");
    if (!done.ok()) {
      log_error("SIGHUP: model " + m.name + " keeps version " +
                (m.active ? m.active->version : "?") + ": " + done.status().message());
    }
  }
}

Status run_serve(const ServeArgs& a) {
  // Signals go to one waiting thread, never to the workers.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Authentication, limits, audit, usage, cache. Without credentials only a
  // loopback address may be served (a developer's machine, the tests),
  // unless --auth-disabled says so on purpose.
  R1_ASSIGN_OR_RETURN(Guardrails guard, make_guardrails(a.guard, a.host));
  Authenticator* auth = guard.auth.get();
  // Spot-safe serving: checkpoints of generations in flight.
  R1_ASSIGN_OR_RETURN(std::unique_ptr<Resumption> resumption,
                      make_resumption(a.interruption, &metrics()));

  VersionSettings vs;
  vs.kv_cache_bytes = a.kv_cache_bytes;
  vs.kv_cache_fraction = a.kv_cache_fraction;
  vs.max_model_len = a.max_model_len;
  vs.max_reasoning_tokens = a.max_reasoning_tokens;
  vs.special_tokens_in_messages = a.special_tokens_in_messages;
  R1_ASSIGN_OR_RETURN(vs.verify, parse_verify_mode(a.verify_weights));
  R1_ASSIGN_OR_RETURN(vs.load, load_options(a.precision, a.device));
  vs.load.n_threads = a.threads;
  vs.load.max_batched_tokens = a.max_batched_tokens;
  vs.engine.max_batched_tokens = a.max_batched_tokens;
  vs.engine.max_seqs = a.max_seqs;
  vs.engine.max_queue = a.max_queue;
  vs.engine.seed = a.seed;
  vs.engine.policy =
      a.scheduling_policy == "priority" ? SchedulingPolicy::kPriority : SchedulingPolicy::kFcfs;

  // What to serve: the version --model names in the registry, or every
  // registry model's default version; or one folder, as version 1.
  std::vector<std::pair<std::string, std::string>> initial;  // model, version
  const bool from_registry = !a.model_repo.empty() || is_model_uri(a.model);
  std::optional<VersionLoader> loader;
  if (from_registry) {
    const std::string source = a.model_repo.empty() ? default_mlflow_store() : a.model_repo;
    R1_ASSIGN_OR_RETURN(ModelRegistry registry, ModelRegistry::open(source));
    if (!a.served_model_name.empty()) {
      log_warning("--served-model-name is ignored: registry models are served by their names");
    }
    if (a.model.empty()) {
      for (const RegistryModel& m : registry.models()) {
        R1_ASSIGN_OR_RETURN(ResolvedVersion v, registry.resolve(m.name));
        initial.emplace_back(v.model, std::to_string(v.version));
      }
      if (initial.empty()) return not_found(source + ": the registry holds no models");
    } else {
      R1_ASSIGN_OR_RETURN(ResolvedVersion v, registry.resolve(a.model));
      initial.emplace_back(v.model, std::to_string(v.version));
    }
    loader.emplace(std::move(registry), true, vs);
  } else {
    const std::string name =
        a.served_model_name.empty() ? folder_model_name(a.model) : a.served_model_name;
    loader.emplace(ModelRegistry::single(name, a.model), false, vs);
    initial.emplace_back(name, "1");
  }
  ModelTable table;
  for (const auto& [name, version] : initial) {
    R1_ASSIGN_OR_RETURN(std::shared_ptr<ServedModel> m, loader->load(name, version));
    log_info("loaded " + m->version_id() + (m->aliases.empty() ? "" : " (") + [&] {
      std::string s;
      for (const std::string& alias : m->aliases) s += (s.empty() ? "" : ", ") + alias;
      return s;
    }() + (m->aliases.empty() ? "" : ")"));
    R1_RETURN_IF_ERROR(table.add(std::move(m)));
  }

  std::unique_ptr<AccessLog> access_log = std::make_unique<AccessLog>();
  if (!a.access_log.empty()) {
    R1_ASSIGN_OR_RETURN(access_log, AccessLog::open(a.access_log));
  }
  HttpServerOptions ho;
  ho.host = a.host;
  ho.port = a.port;
  ho.connections = a.connections;
  ho.connections.n_workers =
      a.http_threads > 0 ? a.http_threads : http_threads_for(a.max_seqs, a.max_queue);
  if (a.max_connections_per_client < 0) {
    ho.connections.max_per_client = http_threads_for(a.max_seqs, a.max_queue);
  } else {
    ho.connections.max_per_client = a.max_connections_per_client;
  }
  ho.max_body_bytes = a.max_body_bytes;
  ho.max_json_depth = a.max_json_depth;
  ho.tls = a.tls;
  // Operators' activations load versions through the same loader.
  VersionLoader& versions = *loader;
  VersionHooks server_loader;
  server_loader.resolve = [&versions](const std::string& model, const std::string& ref) {
    return versions.resolve(model, ref);
  };
  server_loader.load =
      [&versions](const std::string& model,
                  const std::string& version) -> Result<std::shared_ptr<const ServedModel>> {
    R1_ASSIGN_OR_RETURN(std::shared_ptr<ServedModel> m, versions.load(model, version));
    VersionLoader::warm_up(*m);
    return std::shared_ptr<const ServedModel>(std::move(m));
  };
  ServerGuardrails guardrails = guard.server();
  guardrails.resumption = resumption.get();
  OpenAiServer server(table, metrics(), *access_log, ho, guardrails, server_loader);
  R1_ASSIGN_OR_RETURN(int port, server.bind());
  R1_ASSIGN_OR_RETURN(std::unique_ptr<SpotNoticeWatcher> spot_watcher,
                      make_spot_watcher(a.interruption, [&server](const std::string& notice) {
                        server.interrupt(notice);
                      }));
  std::string names;
  for (const auto& [name, version] : initial) names += (names.empty() ? "" : ", ") + name;
  log_info("serving " + names + " on " + (server.tls() ? "https://" : "http://") + a.host + ":" +
           std::to_string(port));

  std::mutex serve_done_mu;
  std::condition_variable serve_done_cv;
  bool serve_done = false;  // guarded by serve_done_mu: serve() returned
  std::thread signal_thread([&] {
    int sig = 0;
    for (;;) {
      sigwait(&signals, &sig);
      if (sig != SIGHUP) break;
      if (server.tls()) {
        const Status t = server.reload_tls();
        if (t.ok()) {
          log_info("SIGHUP: reloaded the TLS certificate and key");
        } else {
          log_error("SIGHUP: keeping the previous TLS certificate: " + t.message());
        }
      }
      if (versions.from_registry()) follow_registry(versions, table, server);
      if (!auth) {
        log_info("SIGHUP: no credentials to reload");
        continue;
      }
      const Status s = auth->reload();
      if (s.ok()) {
        log_info("SIGHUP: reloaded credentials (" + std::to_string(auth->n_keys()) + " API keys)");
      } else {
        log_error("SIGHUP: keeping the previous keys: " + s.message());
      }
    }
    log_info("signal " + std::to_string(sig) + ": draining (up to " +
             std::to_string(a.drain_timeout) + " s)");
    server.interrupt(sig == SIGTERM ? "SIGTERM" : "signal " + std::to_string(sig));
    const bool all =
        server.drain(std::chrono::milliseconds(static_cast<int64_t>(a.drain_timeout * 1000)));
    log_info(all ? "drained; exiting" : "drain timeout; exiting with requests unfinished");
    // The HTTP workers of idle keep-alive connections only notice the stop
    // when their keep-alive wait ends; nothing is in flight any more, so
    // close those connections by exiting rather than keep the pod
    // terminating for that long. Every log line is already flushed.
    std::unique_lock lock(serve_done_mu);
    if (!serve_done_cv.wait_for(lock, std::chrono::seconds(1), [&] { return serve_done; })) {
      std::fflush(nullptr);
      std::_Exit(0);
    }
  });

  // Warm-up: one token through each engine before /ready says yes.
  std::thread warmup([&] {
    for (const ModelTable::ModelView& m : table.models()) {
      for (const ModelTable::Version& v : m.loaded) VersionLoader::warm_up(*v);
    }
    server.set_ready(true);
    log_info("ready");
  });
  server.serve();
  {
    std::lock_guard lock(serve_done_mu);
    serve_done = true;
  }
  serve_done_cv.notify_all();
  warmup.join();
  // serve() returns after drain() stopped it, or on a listener failure: make
  // sure the signal thread ends either way.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  return ok_status();
}

}  // namespace

void add_serve_command(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible API");
  // Defaults are captured so --print-config can show every setting.
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--config", a->config,
                  "YAML file of settings named like these flags; R1SERVE_<FLAG> environment "
                  "variables override it, flags override both");
  cmd->add_flag("--print-config", a->print_config,
                "print the effective configuration (secrets redacted) and exit");
  cmd->add_option("--model", a->model,
                  "Hugging Face model folder, or a .gguf file; with --model-repo a reference: "
                  "NAME, NAME@ALIAS, NAME@VERSION; also MLflow's models:/NAME/VERSION, "
                  "models:/NAME@ALIAS");
  cmd->add_option("--model-repo", a->model_repo,
                  "model registry: a registry YAML file (or a folder holding registry.yaml), or "
                  "an MLflow file store (mlruns/); --model then names a model in it (a registry "
                  "of one model needs no --model)");
  cmd->add_option("--verify-weights", a->verify_weights,
                  "check the model's files against their SHA-256 manifest (`r1serve manifest`) "
                  "while loading: full, sample (sizes and some chunks), off; auto = full when "
                  "a manifest exists")
      ->check(CLI::IsMember({"auto", "full", "sample", "off"}));
  cmd->add_option("--host", a->host, "address to listen on");
  cmd->add_option("--port", a->port, "port (0 picks a free one and logs it)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", a->threads, "compute threads, 0 = all cores")
      ->check(CLI::Range(0, 1024));
  add_precision_options(cmd, &a->precision);
  add_device_options(cmd, &a->device);
  cmd->add_option("--http-threads", a->http_threads,
                  "HTTP worker threads, one per request being served (an SSE stream holds one "
                  "for its life; idle and slow connections hold none); 0 = enough for every "
                  "running and queued request (--max-seqs + --max-queue) plus 64, at most 8192")
      ->check(CLI::Range(0, 8192));
  cmd->add_option("--header-timeout", a->connections.header_timeout_s,
                  "seconds for a request head to arrive whole, from its first byte (from the "
                  "connect for a connection's first request, TLS handshake included); 408 past it")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--request-timeout", a->connections.request_timeout_s,
                  "seconds for a whole request, head and body, to arrive; 408 past it")
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--keep-alive-timeout", a->connections.keep_alive_timeout_s,
                  "seconds an idle connection is kept open between requests")
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--write-timeout", a->connections.write_timeout_s,
                  "seconds one response write may wait for a client that does not read")
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--max-header-bytes", a->connections.max_head_bytes,
                  "largest request head (request line and header fields); 431 past it")
      ->check(CLI::Range(1024, 16 << 20));
  cmd->add_option("--max-connections-per-client", a->max_connections_per_client,
                  "open connections from one client address (429 past it); -1 = as many as "
                  "--http-threads' default, 0 = no limit (behind a proxy every client shares "
                  "its address)")
      ->check(CLI::Range(-1, 1 << 20));
  cmd->add_option("--kv-cache-bytes", a->kv_cache_bytes,
                  "KV cache size; 0 = a fraction of free memory");
  cmd->add_option("--kv-cache-fraction", a->kv_cache_fraction,
                  "fraction of available memory for the KV cache when --kv-cache-bytes is 0")
      ->check(CLI::Range(0.001, 0.9));
  cmd->add_option("--max-batched-tokens", a->max_batched_tokens, "tokens per engine step")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-seqs", a->max_seqs, "running requests at most")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--max-queue", a->max_queue, "waiting requests before 429")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--served-model-name", a->served_model_name, "model name for clients");
  cmd->add_option("--drain-timeout", a->drain_timeout, "seconds to finish requests on SIGTERM");
  cmd->add_option("--max-reasoning-tokens", a->max_reasoning_tokens,
                  "default reasoning budget per request; -1 = none");
  cmd->add_option("--access-log", a->access_log, "JSON-lines access log file ('-' = stdout)");
  cmd->add_option("--seed", a->seed, "seed for requests that give none");
  cmd->add_option("--max-body-bytes", a->max_body_bytes,
                  "request body limit, chunked bodies included (413 past it)");
  cmd->add_option("--tls-cert", a->tls.cert_file,
                  "PEM certificate (then its chain): serve HTTPS (TLS 1.2+); reread on SIGHUP");
  cmd->add_option("--tls-key", a->tls.key_file, "PEM private key of --tls-cert");
  cmd->add_option("--tls-client-ca", a->tls.client_ca_file,
                  "PEM CAs: require client certificates that chain to them (mutual TLS)");
  cmd->add_option("--max-json-depth", a->max_json_depth,
                  "deepest nesting of arrays and objects a request body may have (400 past it)")
      ->check(CLI::Range(2, 10000));
  cmd->add_option("--scheduling-policy", a->scheduling_policy,
                  "fcfs, or priority (the request's \"priority\": lower runs first)")
      ->check(CLI::IsMember({"fcfs", "priority"}));
  cmd->add_flag("--special-tokens-in-messages", a->special_tokens_in_messages,
                "tokenise added tokens inside message contents as special tokens (Hugging "
                "Face's behaviour; lets a client forge role markers)");
  add_guardrail_options(cmd, &a->guard);
  add_interruption_options(cmd, &a->interruption);
  cmd->add_option("--max-model-len", a->max_model_len,
                  "context length to serve (prompt + output); 0 = the model's");
  cmd->callback([a, cmd, exit_code] {
    if (a->print_config) {
      std::fputs(effective_config_yaml(*cmd).c_str(), stdout);
      return;
    }
    if (a->model.empty() && a->model_repo.empty()) {
      *exit_code = report_error(invalid_argument(
          "serve needs a model folder: --model DIR, `model:` in --config, or R1SERVE_MODEL "
          "(or a registry: --model-repo)"));
      return;
    }
    Status s = run_serve(*a);
    if (!s.ok()) *exit_code = report_error(s);
  });
}

}  // namespace r1

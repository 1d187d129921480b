#include "app/version_loader.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include "format/gguf.h"
#include "model/cpu_backend.h"
#include "model/model_folder.h"
#include "obs/gpu_monitor.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/progress.h"

namespace r1 {

namespace {

namespace fs = std::filesystem;

int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return int64_t{4} << 30;
}

// Everything one loaded version owns. Members go in reverse order: the
// engine (its thread) first, then the GPU monitor, the backend, and last
// the folder whose mapped files the backend reads.
struct LoadedVersion {
  ModelFolder folder;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<GpuMonitor> gpu;
  std::unique_ptr<Engine> engine;
  std::string id;
  ~LoadedVersion() {
    engine.reset();
    if (!id.empty()) log_info("unloaded " + id);
  }
};

int64_t bytes_of(const std::string& path) {
  Result<std::vector<std::string>> files = version_files(path);
  if (!files.ok()) return 0;
  int64_t total = 0;
  std::error_code ec;
  for (const std::string& f : *files) total += static_cast<int64_t>(fs::file_size(f, ec));
  return total;
}

}  // namespace

std::string folder_model_name(const std::string& path) {
  std::string name = fs::path(path).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(path).lexically_normal().parent_path().filename().string();
  // A GGUF file is named by its stem; a split set without its -00001-of-N.
  if (is_gguf_path(name)) {
    name = fs::path(name).stem().string();
    static const std::regex kSplit(R"(-\d{5}-of-\d{5}$)");
    name = std::regex_replace(name, kSplit, "");
  }
  return name;
}

VersionLoader::VersionLoader(ModelRegistry registry, bool from_registry, VersionSettings settings)
    : registry_(std::move(registry)), from_registry_(from_registry), s_(std::move(settings)) {}

Status VersionLoader::reload_registry() {
  if (!from_registry_) return ok_status();
  std::string source;
  {
    std::lock_guard<std::mutex> lock(mu_);
    source = registry_.source();
  }
  R1_ASSIGN_OR_RETURN(ModelRegistry fresh, ModelRegistry::open(source));
  std::lock_guard<std::mutex> lock(mu_);
  registry_ = std::move(fresh);
  return ok_status();
}

Result<std::string> VersionLoader::resolve(const std::string& model, const std::string& ref) const {
  std::lock_guard<std::mutex> lock(mu_);
  R1_ASSIGN_OR_RETURN(ResolvedVersion v, registry_.resolve(model + "@" + ref));
  return std::to_string(v.version);
}

Result<std::string> VersionLoader::default_version(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  R1_ASSIGN_OR_RETURN(ResolvedVersion v, registry_.resolve(model));
  return std::to_string(v.version);
}

std::vector<std::string> VersionLoader::model_names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const RegistryModel& m : registry_.models()) out.push_back(m.name);
  return out;
}

Result<std::shared_ptr<ServedModel>> VersionLoader::load(const std::string& model,
                                                         const std::string& version) const {
  ResolvedVersion v;
  {
    std::lock_guard<std::mutex> lock(mu_);
    R1_ASSIGN_OR_RETURN(v, registry_.resolve(model + "@" + version));
  }
  const std::string id = model + "@" + version;
  R1_RETURN_IF_ERROR(verify_version(v.path, s_.verify));
  auto owned = std::make_shared<LoadedVersion>();
  R1_ASSIGN_OR_RETURN(owned->folder, open_model_folder(v.path));
  const ModelFolder& folder = owned->folder;

  // What the version needs, checked before anything big is allocated: its
  // files (mapped, or converted at about their size) and its KV cache.
  LoadOptions lo = s_.load;
  const DType kv_dtype =
      lo.device.cuda
          ? DType::kBF16
          : lo.kv_cache_dtype.value_or(CpuBackend::auto_kv_dtype(*folder.weights, lo.precision));
  const int64_t per_token = CpuBackend::kv_bytes_per_token(folder.config, kv_dtype);
  if (!lo.device.cuda) lo.kv_cache_dtype = kv_dtype;
  const int64_t available = available_memory_bytes();
  const int64_t kv_budget = s_.kv_cache_bytes > 0
                                ? s_.kv_cache_bytes
                                : static_cast<int64_t>(available * s_.kv_cache_fraction);
  lo.kv_cache_tokens = std::max<int64_t>(16, kv_budget / per_token);
  if (lo.device.cuda) {
    // The KV cache takes what --gpu-memory-utilization leaves, unless
    // --kv-cache-bytes sizes it.
    lo.kv_cache_tokens = s_.kv_cache_bytes > 0 ? s_.kv_cache_bytes / per_token : 0;
  } else {
    const int64_t weights = bytes_of(v.path);
    if (weights + kv_budget > available) {
      return resource_exhausted(
          id + " does not fit: it needs about " + Progress::bytes_text(weights + kv_budget) + " (" +
          Progress::bytes_text(weights) + " of weights, " + Progress::bytes_text(kv_budget) +
          " of KV cache) and " + Progress::bytes_text(available) +
          " is available; unload a version or size the KV cache with --kv-cache-bytes");
    }
  }
  R1_ASSIGN_OR_RETURN(owned->backend, create_backend(folder, lo));
  const int64_t tokens =
      static_cast<int64_t>(owned->backend->n_kv_blocks()) * owned->backend->block_size();
  const int64_t context = s_.max_model_len > 0
                              ? std::min(s_.max_model_len, folder.config.max_position_embeddings)
                              : folder.config.max_position_embeddings;
  log_info(id + ": KV cache (" + std::string(dtype_name(kv_dtype)) + ") " +
           std::to_string(owned->backend->n_kv_blocks()) + " blocks of " +
           std::to_string(owned->backend->block_size()) + " tokens = " + std::to_string(tokens) +
           " tokens; max concurrent sequences at full context: " +
           std::to_string(tokens / std::max<int64_t>(1, context)));

  auto m = std::make_shared<ServedModel>();
  m->name = model;  // a folder served alone is registered under its served name
  m->version = version;
  if (from_registry_) {
    // Registry versions answer to NAME@VERSION and NAME@ALIAS, and list them.
    m->aliases.push_back(m->name + "@" + version);
    for (const std::string& alias : v.aliases) m->aliases.push_back(m->name + "@" + alias);
  }
  m->created = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  m->tokenizer = folder.tokenizer;
  m->chat_template = folder.chat_template;
  m->chat_template_status = folder.chat_template_status;
  m->generation = folder.generation;
  m->context_len = context;
  m->stop_ids = folder.stop_ids;
  m->think_start_id = folder.tokenizer->token_to_id("<think>");
  m->think_end_id = folder.tokenizer->token_to_id("</think>");
  if (m->think_end_id) {
    R1_ASSIGN_OR_RETURN(m->reasoning_close_ids, folder.tokenizer->encode("\n</think>\n\n", false));
  }
  m->default_max_reasoning_tokens = s_.max_reasoning_tokens;
  m->special_tokens_in_messages = s_.special_tokens_in_messages;

  EngineOptions eo = s_.engine;
  ModelMetrics* model_metrics = &metrics().model(m->name);
  eo.on_step = [model_metrics](int32_t n_seqs, int32_t, bool decode, double seconds) {
    model_metrics->observe_batch_size(n_seqs);
    model_metrics->observe_step(n_seqs, decode, seconds);
  };
  owned->engine = std::make_unique<Engine>(*owned->backend, eo);
  m->engine = owned->engine.get();
  // GPU gauges and the access log's gpu_memory_used, from NVML.
  if (lo.device.cuda) {
    Result<std::unique_ptr<GpuMonitor>> monitor = GpuMonitor::open(lo.device.index);
    if (monitor.ok()) {
      owned->gpu = std::move(monitor).value();
      m->gpu = owned->gpu.get();
    } else {
      log_warning("no GPU metrics: " + monitor.status().message());
    }
  }
  owned->id = m->version_id();
  m->owner = std::move(owned);
  return m;
}

void VersionLoader::warm_up(const ServedModel& m) {
  EngineRequest r;
  r.id = "warmup-" + m.version_id();
  const auto* owned = static_cast<const LoadedVersion*>(m.owner.get());
  r.prompt = {owned != nullptr ? owned->folder.bos_id.value_or(0) : 0};
  r.sampling.temperature = 0.0f;
  r.max_tokens = 1;
  auto s = m.engine->submit(r);
  if (s.ok()) (*s)->next();
}

}  // namespace r1

#include "app/cli_util.h"

#include <cerrno>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "obs/log.h"

namespace r1 {

Result<std::vector<int32_t>> parse_ids_csv(const std::string& csv) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= csv.size()) {
    size_t comma = csv.find(',', pos);
    if (comma == std::string::npos) comma = csv.size();
    std::string item = csv.substr(pos, comma - pos);
    size_t b = item.find_first_not_of(" \t\n"), e = item.find_last_not_of(" \t\n");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (item.empty()) {
      if (comma == csv.size() && pos == csv.size() && !ids.empty()) break;  // trailing comma
      return invalid_argument("--ids: empty item in '" + csv + "'");
    }
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (errno != 0 || end != item.c_str() + item.size() || v < 0 || v > INT32_MAX) {
      return invalid_argument("--ids: '" + item + "' is not a token id");
    }
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return ids;
}

int report_error(const Status& status) {
  log_error(status.message());
  return 1;
}

void add_precision_options(CLI::App* cmd, PrecisionArgs* a) {
  cmd->add_option("--dtype", a->dtype,
                  "weights of the decoder layers: bf16, f16, f32, int8 or int4 (converted at "
                  "load), fp8 on a GPU; empty = the file's dtype");
  cmd->add_option("--lm-head-dtype", a->lm_head_dtype,
                  "the output layer's dtype; empty = --dtype, or int8 when --dtype is int4");
  cmd->add_option("--embed-dtype", a->embed_dtype,
                  "the embedding table's dtype; empty = the file's");
  cmd->add_option("--int8-group-size", a->int8_group_size,
                  "columns per int8 scale (a multiple of 32); 0 = one scale per output channel (32 "
                  "for GGUF block formats, one scale per block)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--kv-cache-dtype", a->kv_cache_dtype,
                  "the KV cache's element type: bf16 (half the bytes attention reads), f32 (CPU "
                  "only), or auto: f32 when the layers compute from f32 weights, else bf16");
}

void add_device_options(CLI::App* cmd, DeviceArgs* a) {
  cmd->add_option("--device", a->device, "where the model runs: cpu, cuda or cuda:N");
  cmd->add_option("--gpu-memory-utilization", a->gpu_memory_utilization,
                  "--device cuda: the share of the GPU's memory r1serve may use (weights, "
                  "activations, then KV cache)")
      ->check(CLI::Range(0.05, 1.0));
  cmd->add_option("--int8-prefill", a->int8_prefill,
                  "--device cuda --dtype int8: products of more than 8 tokens as dequantize "
                  "(the matrix to 16-bit, then a 16-bit GEMM) or int8-gemm (activations "
                  "quantised per token, an int8 tensor-core GEMM)")
      ->check(CLI::IsMember({"dequantize", "int8-gemm"}));
}

Result<LoadOptions> load_options(const PrecisionArgs& precision, const DeviceArgs& device) {
  LoadOptions lo;
  R1_ASSIGN_OR_RETURN(lo.precision, parse_precision(precision));
  R1_ASSIGN_OR_RETURN(lo.device, parse_device(device.device));
  lo.fp8 = precision.dtype == "fp8";
  if (precision.kv_cache_dtype != "auto") {
    const std::optional<DType> kv = parse_dtype(precision.kv_cache_dtype);
    if (!kv || (*kv != DType::kBF16 && *kv != DType::kF32)) {
      return invalid_argument("--kv-cache-dtype " + precision.kv_cache_dtype +
                              ": expected auto, bf16 or f32");
    }
    if (lo.device.cuda && *kv != DType::kBF16) {
      return invalid_argument("--kv-cache-dtype " + precision.kv_cache_dtype +
                              ": a GPU's KV cache is bf16");
    }
    lo.kv_cache_dtype = kv;
  }
  lo.gpu_memory_utilization = device.gpu_memory_utilization;
  lo.int8_gemm = device.int8_prefill == "int8-gemm";
  if (lo.int8_gemm && (!lo.device.cuda || lo.precision.layers != DType::kQ8)) {
    return invalid_argument("--int8-prefill int8-gemm needs --device cuda and --dtype int8");
  }
  return lo;
}

Result<WeightPrecision> parse_precision(const PrecisionArgs& a) {
  WeightPrecision p;
  p.int8_group_size = a.int8_group_size;
  auto one = [](const std::string& flag, const std::string& v,
                std::optional<DType>* out) -> Status {
    if (v.empty()) return ok_status();
    std::optional<DType> t = parse_weight_dtype(v);
    if (!t) {
      return invalid_argument(flag + " " + v + ": expected bf16, f16, f32, int8 or int4");
    }
    *out = t;
    return ok_status();
  };
  if (a.dtype != "fp8") R1_RETURN_IF_ERROR(one("--dtype", a.dtype, &p.layers));
  R1_RETURN_IF_ERROR(one("--lm-head-dtype", a.lm_head_dtype, &p.lm_head));
  R1_RETURN_IF_ERROR(one("--embed-dtype", a.embed_dtype, &p.embed));
  return p;
}

}  // namespace r1

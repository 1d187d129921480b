// WeightFiles: the safetensors of a Hugging Face folder, single-file or sharded
// through model.safetensors.index.json.
#include <sys/stat.h>

#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "format/detail/json_util.h"
#include "format/safetensors.h"

namespace r1 {

namespace {

using nlohmann::json;

constexpr std::string_view kIndexName = "model.safetensors.index.json";
constexpr std::string_view kSingleName = "model.safetensors";

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A shard name from the index must name a file directly inside the folder:
// an index must not be able to point the loader at /etc or ../other-model.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// shard file name -> the tensors the index places in it.
using ShardMap = std::map<std::string, std::vector<std::string>>;

Result<ShardMap> read_index(const std::string& index_path) {
  R1_ASSIGN_OR_RETURN(std::string text, detail::read_text_file(index_path));
  R1_ASSIGN_OR_RETURN(json index, detail::parse_json(text, index_path));
  if (!index.is_object()) {
    return invalid_argument(index_path + ": is a JSON " + detail::json_type_name(index) +
                            ", not an object");
  }
  auto it = index.find("weight_map");
  if (it == index.end()) return invalid_argument(index_path + ": missing \"weight_map\"");
  if (!it->is_object()) return invalid_argument(index_path + ": \"weight_map\" is not an object");
  if (it->empty()) return invalid_argument(index_path + ": \"weight_map\" lists no tensors");
  ShardMap shards;
  for (const auto& [tensor, shard] : it->items()) {
    if (!shard.is_string()) {
      return invalid_argument(index_path + ": tensor " + tensor + ": shard is a " +
                              detail::json_type_name(shard) + ", not a file name");
    }
    auto shard_name = shard.get<std::string>();
    if (!is_plain_file_name(shard_name)) {
      return invalid_argument(index_path + ": tensor " + tensor + ": shard \"" + shard_name +
                              "\" is not a file name inside the folder");
    }
    shards[shard_name].push_back(tensor);
  }
  return shards;
}

}  // namespace

std::vector<std::string> WeightFiles::file_paths() const {
  std::vector<std::string> paths;
  paths.reserve(files_.size());
  for (const auto& f : files_) paths.push_back(f->path());
  if (gguf_) {
    for (const auto& f : gguf_->files()) paths.push_back(f->path());
  }
  return paths;
}

const TensorInfo* WeightFiles::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

Result<WeightFiles> WeightFiles::open_folder(const std::string& dir) {
  const std::string index_path = dir + "/" + std::string(kIndexName);
  const std::string single_path = dir + "/" + std::string(kSingleName);
  WeightFiles weights;

  if (!path_exists(index_path)) {
    if (!path_exists(single_path)) {
      if (!is_directory(dir)) return not_found(dir + ": no such model folder");
      return not_found(dir + ": neither " + std::string(kSingleName) + " nor " +
                       std::string(kIndexName) + " is in the folder");
    }
    R1_ASSIGN_OR_RETURN(std::shared_ptr<SafetensorsFile> file, SafetensorsFile::open(single_path));
    for (const TensorInfo& t : file->tensors()) weights.by_name_.emplace(t.name, t);
    weights.files_.push_back(std::move(file));
    weights.source_ = single_path;
    return weights;
  }

  R1_ASSIGN_OR_RETURN(ShardMap shards, read_index(index_path));
  for (const auto& [shard_name, listed] : shards) {
    auto opened = SafetensorsFile::open(dir + "/" + shard_name);
    if (!opened.ok()) {
      return opened.status().with_context(index_path + ": shard " + shard_name + " (holding " +
                                          listed.front() + ")");
    }
    std::shared_ptr<SafetensorsFile> file = std::move(opened).value();
    for (const TensorInfo& t : file->tensors()) {
      auto [it, inserted] = weights.by_name_.emplace(t.name, t);
      if (!inserted) {
        return invalid_argument("tensor " + t.name + ": appears in both " + it->second.file +
                                " and " + t.file);
      }
    }
    for (const std::string& name : listed) {
      auto it = weights.by_name_.find(name);
      if (it == weights.by_name_.end() || it->second.file != file->path()) {
        return not_found("tensor " + name + ": " + std::string(kIndexName) + " places it in " +
                         shard_name + ", but " + file->path() + " does not hold it");
      }
    }
    weights.files_.push_back(std::move(file));
  }
  weights.source_ = index_path;
  return weights;
}

}  // namespace r1

#include "model/model_folder.h"

#include <algorithm>
#include <climits>

#include "format/gguf.h"
#include "format/weight_validation.h"

namespace r1 {

namespace {
void add_unique(std::vector<int32_t>& ids, int64_t id) {
  if (id < 0 || id > INT32_MAX) return;
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(static_cast<int32_t>(id));
}
}  // namespace

Result<ModelFolder> open_model_folder(const std::string& dir) {
  if (is_gguf_path(dir)) return open_gguf_model(dir);
  ModelFolder m;
  m.dir = dir;
  R1_ASSIGN_OR_RETURN(m.config, load_model_config(dir));
  R1_ASSIGN_OR_RETURN(m.generation, load_generation_config(dir));
  R1_ASSIGN_OR_RETURN(WeightFiles files, WeightFiles::open_folder(dir));
  R1_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::load(dir));
  return finish_model_folder(std::move(m), std::move(files), std::move(tok),
                             dir + "/tokenizer_config.json");
}

Result<ModelFolder> finish_model_folder(ModelFolder m, WeightFiles files, Tokenizer tok,
                                        const std::string& template_label) {
  const std::string& dir = m.dir;
  R1_RETURN_IF_ERROR(validate_weights(m.config, files));
  m.weights = std::make_shared<const WeightFiles>(std::move(files));
  if (tok.n_tokens() > m.config.vocab_size) {
    return invalid_argument(dir + ": the tokenizer has " + std::to_string(tok.n_tokens()) +
                            " tokens but the model's vocab_size is " +
                            std::to_string(m.config.vocab_size));
  }
  m.tokenizer = std::make_shared<const Tokenizer>(std::move(tok));

  if (auto bos = m.tokenizer->bos_id()) {
    m.bos_id = *bos;
  } else if (m.generation.bos_token_id) {
    m.bos_id = static_cast<int32_t>(*m.generation.bos_token_id);
  } else if (m.config.bos_token_id) {
    m.bos_id = static_cast<int32_t>(*m.config.bos_token_id);
  }
  for (int64_t id : m.generation.eos_token_ids) add_unique(m.stop_ids, id);
  if (auto eos = m.tokenizer->eos_id()) add_unique(m.stop_ids, *eos);
  if (m.stop_ids.empty()) {
    for (int64_t id : m.config.eos_token_ids) add_unique(m.stop_ids, id);
  }
  for (const char* name : {"<|eot_id|>", "<|eom_id|>"}) {
    if (auto id = m.tokenizer->token_to_id(name)) add_unique(m.stop_ids, *id);
  }

  std::string bos_text;
  if (m.bos_id) bos_text = m.tokenizer->token_bytes(*m.bos_id);
  auto tmpl = ChatTemplate::detect(m.tokenizer->chat_template_source(), bos_text);
  if (tmpl.ok()) {
    m.chat_template = std::move(tmpl).value();
  } else {
    m.chat_template_status = tmpl.status().with_context(template_label);
  }
  return m;
}

}  // namespace r1

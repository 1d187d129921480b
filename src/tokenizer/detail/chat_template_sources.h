// The Jinja sources of the DeepSeek-R1 chat template revisions that r1serve
// renders natively (chat_template.cpp). Byte for byte as the model files carry
// them in tokenizer_config.json "chat_template"; the adjacent raw literals are
// split between tags only for reading and concatenate to the exact text.
#pragma once

#include <string_view>

namespace r1::detail {

// Everything before the generation prompt, shared by both revisions.
// clang-format off
#define R1_DEEPSEEK_R1_TEMPLATE_HEAD \
    R"jinja({% if not add_generation_prompt is defined %})jinja" \
    R"jinja({% set add_generation_prompt = false %})jinja" \
    R"jinja({% endif %})jinja" \
    R"jinja({% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %})jinja" \
    R"jinja({%- for message in messages %})jinja" \
    R"jinja({%- if message['role'] == 'system' %})jinja" \
    R"jinja({% set ns.system_prompt = message['content'] %})jinja" \
    R"jinja({%- endif %})jinja" \
    R"jinja({%- endfor %})jinja" \
    R"jinja({{bos_token}})jinja" \
    R"jinja({{ns.system_prompt}})jinja" \
    R"jinja({%- for message in messages %})jinja" \
    R"jinja({%- if message['role'] == 'user' %})jinja" \
    R"jinja({%- set ns.is_tool = false -%})jinja" \
    R"jinja({{'<｜User｜>' + message['content']}})jinja" \
    R"jinja({%- endif %})jinja" \
    R"jinja({%- if message['role'] == 'assistant' and message['content'] is none %})jinja" \
    R"jinja({%- set ns.is_tool = false -%})jinja" \
    R"jinja({%- for tool in message['tool_calls']%})jinja" \
    R"jinja({%- if not ns.is_first %})jinja" \
    R"jinja({{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}})jinja" \
    R"jinja({%- set ns.is_first = true -%})jinja" \
    R"jinja({%- else %})jinja" \
    R"jinja({{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}})jinja" \
    R"jinja({{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}})jinja" \
    R"jinja({%- endif %})jinja" \
    R"jinja({%- endfor %})jinja" \
    R"jinja({%- endif %})jinja" \
    R"jinja({%- if message['role'] == 'assistant' and message['content'] is not none %})jinja" \
    R"jinja({%- if ns.is_tool %})jinja" \
    R"jinja({{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}})jinja" \
    R"jinja({%- set ns.is_tool = false -%})jinja" \
    R"jinja({%- else %})jinja" \
    R"jinja({% set content = message['content'] %})jinja" \
    R"jinja({% if '</think>' in content %})jinja" \
    R"jinja({% set content = content.split('</think>')[-1] %})jinja" \
    R"jinja({% endif %})jinja" \
    R"jinja({{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}})jinja" \
    R"jinja({%- endif %})jinja" \
    R"jinja({%- endif %})jinja" \
    R"jinja({%- if message['role'] == 'tool' %})jinja" \
    R"jinja({%- set ns.is_tool = true -%})jinja" \
    R"jinja({%- if ns.is_output_first %})jinja" \
    R"jinja({{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}})jinja" \
    R"jinja({%- set ns.is_output_first = false %})jinja" \
    R"jinja({%- else %})jinja" \
    R"jinja({{'\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}})jinja" \
    R"jinja({%- endif %})jinja" \
    R"jinja({%- endif %})jinja" \
    R"jinja({%- endfor -%})jinja" \
    R"jinja({% if ns.is_tool %})jinja" \
    R"jinja({{'<｜tool▁outputs▁end｜>'}})jinja" \
    R"jinja({% endif %})jinja" \
    R"jinja({% if add_generation_prompt and not ns.is_tool %})jinja"
// clang-format on

// Current revision (R1-Distill-Qwen-32B sha 711ad2ea..., R1-Distill-Llama-8B
// sha 6a6f4aa4..., lastModified 2025-02-24): the generation prompt ends with
// "<think>\n". 2246 bytes, SHA-256
// 56a1447ad31926fdc21fb07e56e5642bd9c850c4f52d8c8af7bbe5f079a84f5f.
inline constexpr std::string_view kDeepSeekR1CurrentSource =
    R1_DEEPSEEK_R1_TEMPLATE_HEAD R"jinja({{'<｜Assistant｜><think>\n'}})jinja"
                                 R"jinja({% endif %})jinja";

// Original revision (2025-01-20 release): identical except that the
// generation prompt is "<｜Assistant｜>" only. 2237 bytes, SHA-256
// b6835114b7303ddd78919a82e4d9f7d8c26ed0d7dfc36beeb12d524f6144eab1 (the
// digest llama.cpp records for its copy of the R1-Distill-Llama-8B template).
inline constexpr std::string_view kDeepSeekR1OriginalSource =
    R1_DEEPSEEK_R1_TEMPLATE_HEAD R"jinja({{'<｜Assistant｜>'}})jinja"
                                 R"jinja({% endif %})jinja";

#undef R1_DEEPSEEK_R1_TEMPLATE_HEAD

// SmolLM2-Instruct's ChatML template (HuggingFaceTB/SmolLM2-*-Instruct
// tokenizer_config.json, also in their GGUF conversions): every message as
// <|im_start|>ROLE, newline, CONTENT<|im_end|>, newline; a default system message when the
// first message is not one.
// clang-format off
inline constexpr std::string_view kSmolLM2ChatMLSource =
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
// clang-format on

}  // namespace r1::detail

// Test oracle for the native chat templates (src/tokenizer/chat_template.cpp):
// renders a Jinja chat template with @huggingface/jinja, the engine
// transformers.js uses, so the C++ renderer can be compared byte for byte.
//
// stdin:  {"template": "...", "bos_token": "...", "eos_token": "...",
//          "cases": [{"messages": [...], "add_generation_prompt": bool}, ...]}
// stdout: JSON array of rendered strings, one per case, in order. A case the
//         engine rejects yields {"error": "<message>"} in its place.
//
// Messages are passed through unchanged, so they must already have the OpenAI
// shape the template reads: {"role", "content" (string or null),
// "tool_calls": [{"type": "function", "function": {"name", "arguments"}}]}.
import { Template } from "@huggingface/jinja";

async function read_stdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const input = JSON.parse(await read_stdin());
const template = new Template(input.template);
const rendered = input.cases.map((c) => {
  try {
    return template.render({
      messages: c.messages,
      bos_token: input.bos_token ?? "",
      eos_token: input.eos_token ?? "",
      add_generation_prompt: c.add_generation_prompt ?? false,
    });
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
});
process.stdout.write(JSON.stringify(rendered));

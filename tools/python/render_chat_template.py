"""Test oracle for the native chat templates (src/tokenizer/chat_template.cpp).

Renders a Jinja chat template with jinja2 in the environment transformers'
apply_chat_template builds, so the C++ renderer can be compared byte for
byte.

stdin:  {"template": "...", "bos_token": "...", "eos_token": "...",
         "cases": [{"messages": [...], "add_generation_prompt": bool}, ...]}
stdout: JSON array of rendered strings, one per case, in order. A case the
        engine rejects yields {"error": "<message>"} in its place.

Messages are passed through unchanged, so they must already have the OpenAI
shape the template reads: {"role", "content" (string or null),
"tool_calls": [{"type": "function", "function": {"name", "arguments"}}]}.
"""

import json
import sys
from datetime import datetime

import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces Jinja's tojson, which escapes HTML characters.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def compile_template(source):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def main():
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    template = compile_template(request["template"])
    rendered = []
    for case in request["cases"]:
        try:
            # The variables apply_chat_template passes (no tools, no documents).
            rendered.append(
                template.render(
                    messages=case["messages"],
                    tools=None,
                    documents=None,
                    add_generation_prompt=case.get("add_generation_prompt", False),
                    bos_token=request.get("bos_token", ""),
                    eos_token=request.get("eos_token", ""),
                )
            )
        except Exception as e:  # any failure of the template is the case's result
            rendered.append({"error": f"{type(e).__name__}: {e}"})
    sys.stdout.buffer.write(json.dumps(rendered, ensure_ascii=False).encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

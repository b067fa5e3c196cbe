#!/usr/bin/python3
"""Reference renderer for the chat template tests: python3-jinja2 configured exactly as transformers'
_compile_jinja_template (transformers/utils/chat_template_utils.py) configures it.

Reads a JSON list of cases on stdin and writes a JSON list of results on stdout, one per case:
  {"template": str, "context": {...}, "now": epoch?}            render the template with that context
  {"model_dir": str, "messages": [...], "tools": [...]?,         build the context as apply_chat_template does
   "add_generation_prompt": bool, "vars": {...}?, "now": epoch?}  from the model's tokenizer_config.json
Result: {"ok": true, "out": str} or {"ok": false, "err": "ExceptionType: message"}.
"""
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


class AssistantTracker(jinja2.ext.Extension):
    # transformers' {% generation %} tag; rendering only needs its body in place.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


def make_env(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        t = datetime.fromtimestamp(now) if now is not None else datetime.now()
        return t.strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


SPECIAL = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


def token_content(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


def model_context(case):
    """What apply_chat_template passes to render(): special tokens map, messages, tools, documents, flag."""
    d = case["model_dir"]
    cfg = {}
    path = os.path.join(d, "tokenizer_config.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    template = cfg.get("chat_template")
    jinja_path = os.path.join(d, "chat_template.jinja")
    if os.path.exists(jinja_path):
        with open(jinja_path, encoding="utf-8") as f:
            template = f.read()
    tools = case.get("tools")
    if isinstance(template, list):
        named = {t["name"]: t["template"] for t in template}
        if tools is not None and "tool_use" in named:
            template = named["tool_use"]
        else:
            template = named["default"]
    if template is None:
        raise ValueError("no chat template")
    ctx = {}
    for key in SPECIAL:
        v = token_content(cfg.get(key))
        if v:
            ctx[key] = v
    extra = [token_content(t) for t in cfg.get("additional_special_tokens") or []]
    if extra:
        ctx["additional_special_tokens"] = extra
    ctx.update(
        messages=case["messages"],
        tools=tools,
        documents=None,
        add_generation_prompt=bool(case.get("add_generation_prompt", False)),
    )
    ctx.update(case.get("vars") or {})
    return template, ctx


def run(case):
    try:
        if "model_dir" in case:
            template, ctx = model_context(case)
        else:
            template, ctx = case["template"], case["context"]
        env = make_env(case.get("now"))
        out = env.from_string(template).render(**ctx)
        return {"ok": True, "out": out}
    except Exception as e:  # every failure is a result the C++ side must match as an error
        return {"ok": False, "err": "%s: %s" % (type(e).__name__, e)}


def main():
    cases = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    results = [run(c) for c in cases]
    sys.stdout.buffer.write(json.dumps(results, ensure_ascii=True).encode("ascii"))


if __name__ == "__main__":
    main()

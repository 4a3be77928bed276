#!/usr/bin/env python3
"""Render the Gemma 4 chat-template fixtures with transformers' own Jinja environment.

Reads tests/data/chat/conversations.json and tests/data/chat/gemma4_chat_template.jinja
(the July 2026 official template, large-model flavour) and writes tests/data/chat/expected.json:
one entry per conversation with the exact rendered prompt, or the error the template raised.

The E2B/E4B flavour differs from the large one only in the generation prompt (no empty thought
block when thinking is off); it is derived here by removing that block, which must occur once.

Runs where transformers is installed (the GPU machine):
    python3 tools/render_chat_fixtures.py [--out DIR]
Without transformers it falls back to a local copy of transformers' Jinja settings (marked
"engine": "jinja2-emulation" in the output); only transformers renders are committed.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "chat")

EMPTY_THOUGHT_BLOCK = (
    "        {%- if not enable_thinking -%}\n"
    "            {{- '<|channel>thought\\n<channel|>' -}}\n"
    "        {%- endif -%}\n"
)


def e_flavour(template):
    if template.count(EMPTY_THOUGHT_BLOCK) != 1:
        sys.exit("the empty-thought block of the generation prompt was not found exactly once")
    return template.replace(EMPTY_THOUGHT_BLOCK, "")


def make_renderers():
    """Returns (engine name, render(template, messages, tools, agp, kwargs) -> str)."""
    try:
        import transformers
        from transformers.utils import chat_template_utils as ctu
    except ImportError:
        ctu = None
    if ctu is not None:
        version = transformers.__version__

        def render(template, messages, tools, agp, kwargs):
            if hasattr(ctu, "render_jinja_template"):
                out = ctu.render_jinja_template(
                    conversations=[messages], tools=tools, chat_template=template,
                    add_generation_prompt=agp, **kwargs)
                rendered = out[0] if isinstance(out, tuple) else out
                return rendered[0]
            compiled = ctu._compile_jinja_template(template)
            return compiled.render(messages=messages, tools=tools, add_generation_prompt=agp, **kwargs)

        def render_compiled(template, messages, tools, agp, kwargs):
            compiled = ctu._compile_jinja_template(template)
            return compiled.render(messages=messages, tools=tools, documents=None,
                                   add_generation_prompt=agp, **kwargs)

        return "transformers " + version, render, render_compiled

    # Local stand-in with transformers' settings (trim_blocks, lstrip_blocks, loopcontrols,
    # raise_exception, tojson), for developing the fixtures without the GPU machine.
    import jinja2
    import jinja2.ext
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception

    def render(template, messages, tools, agp, kwargs):
        return env.from_string(template).render(messages=messages, tools=tools, documents=None,
                                                add_generation_prompt=agp, **kwargs)

    return "jinja2-emulation " + jinja2.__version__, render, render


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DATA, help="directory for expected.json")
    args = ap.parse_args()

    with open(os.path.join(DATA, "gemma4_chat_template.jinja"), encoding="utf-8") as f:
        large = f.read()
    templates = {"large": large, "e": e_flavour(large)}
    with open(os.path.join(DATA, "conversations.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]

    engine, render, render_compiled = make_renderers()
    results, mismatches = [], []
    for c in cases:
        kwargs = dict(c.get("kwargs", {}))
        kwargs.setdefault("bos_token", "<bos>")
        entry = {"name": c["name"], "flavour": c["flavour"],
                 "add_generation_prompt": c["add_generation_prompt"], "kwargs": kwargs,
                 "messages": c["messages"]}
        if "tools" in c:
            entry["tools"] = c["tools"]
        tpl = templates[c["flavour"]]
        outcome = {}
        for label, fn in (("primary", render), ("compiled", render_compiled)):
            try:
                outcome[label] = ("text", fn(tpl, c["messages"], c.get("tools"),
                                             c["add_generation_prompt"], kwargs))
            except Exception as e:  # the template's own refusal, or a Jinja type error
                outcome[label] = ("error", "%s: %s" % (type(e).__name__, e))
        if outcome["primary"] != outcome["compiled"]:
            mismatches.append(c["name"])
        kind, value = outcome["primary"]
        entry["expected" if kind == "text" else "error"] = value
        results.append(entry)

    out = {"engine": engine,
           "template": "tests/data/chat/gemma4_chat_template.jinja",
           "note": "Generated by tools/render_chat_fixtures.py; do not edit by hand.",
           "cases": results}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    n_err = sum(1 for r in results if "error" in r)
    print("%s: %d cases (%d errors), render paths disagree on: %s"
          % (engine, len(results), n_err, mismatches or "none"))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Reference renderer for the chat-template differential test.

Renders every *.jinja template of a directory against every conversation of a case file with
python3-jinja2, configured exactly like Hugging Face transformers' `_compile_jinja_template`
(src/transformers/utils/chat_template_utils.py):

  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[AssistantTracker, jinja2.ext.loopcontrols])
  filters["tojson"]  = json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)
  globals["raise_exception"] raises jinja2.exceptions.TemplateError(message)
  globals["strftime_now"](fmt) formats a fixed date (the case file's "strftime_now") here

and called like `render_jinja_template`: messages=..., tools=<list or None>, documents=None,
add_generation_prompt=..., bos_token=..., eos_token=..., plus a case's extra "variables"
(transformers passes extra apply_chat_template kwargs through the same way). A case's
"with_tools" is true (the file's tool list), "empty" (an empty list) or absent (None).

With --snippets FILE it instead renders each {name, template, vars} of FILE (a JSON list) in the
same environment (strftime_now fixed at 2025-02-14 09:30:00).

Prints one JSON document on stdout: {"jinja2_version": ..., "results": [...]}, one result per
(template, case, add_generation_prompt) with either "text" or "error_type"/"error".
Exit code 3 means jinja2 is not importable (the C++ test then skips).

Run with Debian's /usr/bin/python3, which has python3-jinja2.
"""
import argparse
import datetime
import json
import os
import sys

try:
    import jinja2
    import jinja2.ext
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as e:  # pragma: no cover - environment dependent
    print(f"jinja2 is not available: {e}", file=sys.stderr)
    sys.exit(3)


class AssistantTracker(Extension):
    """transformers' {% generation %} tag; renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(
            lineno
        )

    def _generation_support(self, caller):
        return caller()


def make_environment(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return now.strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render_one(env, source, case, tools, add_generation_prompt, bos, eos):
    try:
        template = env.from_string(source)
        text = template.render(
            messages=case["messages"],
            tools=tools,
            documents=None,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos,
            eos_token=eos,
            **case.get("variables", {}),
        )
        return {"ok": True, "text": text}
    except Exception as e:  # the comparison only needs to know that (and how) it failed
        return {"ok": False, "error_type": type(e).__name__, "error": str(e)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--templates", help="directory of *.jinja files")
    parser.add_argument("--cases", help="chat_cases.json")
    parser.add_argument("--snippets", help="jinja_snippets.json: small templates with their variables")
    args = parser.parse_args()

    if args.snippets:
        with open(args.snippets, encoding="utf-8") as f:
            snippets = json.load(f)
        env = make_environment(datetime.datetime(2025, 2, 14, 9, 30, 0))
        results = []
        for snippet in snippets:
            try:
                text = env.from_string(snippet["template"]).render(**snippet["vars"])
                result = {"ok": True, "text": text}
            except Exception as e:
                result = {"ok": False, "error_type": type(e).__name__, "error": str(e)}
            result["name"] = snippet["name"]
            results.append(result)
        json.dump({"jinja2_version": jinja2.__version__, "results": results}, sys.stdout, ensure_ascii=True)
        return
    if not args.templates or not args.cases:
        parser.error("--templates and --cases are required without --snippets")

    with open(args.cases, encoding="utf-8") as f:
        spec = json.load(f)
    now = datetime.datetime.fromisoformat(spec["strftime_now"])
    env = make_environment(now)
    results = []
    for name in sorted(os.listdir(args.templates)):
        if not name.endswith(".jinja"):
            continue
        with open(os.path.join(args.templates, name), encoding="utf-8", newline="") as f:
            source = f.read()
        for case in spec["cases"]:
            with_tools = case.get("with_tools")
            tools = [] if with_tools == "empty" else (spec["tools"] if with_tools else None)
            for add_generation_prompt in (False, True):
                result = render_one(
                    env, source, case, tools, add_generation_prompt, spec["bos_token"], spec["eos_token"]
                )
                result.update(
                    {"template": name, "case": case["name"], "add_generation_prompt": add_generation_prompt}
                )
                results.append(result)
    json.dump({"jinja2_version": jinja2.__version__, "results": results}, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()

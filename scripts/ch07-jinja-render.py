#!/usr/bin/env python3
"""Render tinyseek's chat templates with a real Jinja implementation (chapter 7).

    ch07-jinja-render.py DIR

DIR holds tokenizer_config.json (as a checkpoint save writes it) and cases.json,
a list of {"template", "prompt", "response", "want_prompt", "want_full"}: the
strings tinyseek rendered. Each case is rendered the way Hugging Face's
apply_chat_template does (a sandboxed environment with trim_blocks and
lstrip_blocks; messages, add_generation_prompt, bos_token, eos_token) and
compared byte for byte. Exit 0 when every case matches, 1 on a mismatch (the
first one is printed), 77 when jinja2 is not installed (the test then skips)."""
import json
import sys

try:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja2 is not installed (Debian: python3-jinja2)")
    sys.exit(77)

d = sys.argv[1]
config = json.load(open(f"{d}/tokenizer_config.json"))
templates = {t["name"]: t["template"] for t in config["chat_template"]}
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
bad = 0
for case in json.load(open(f"{d}/cases.json")):
    tpl = env.from_string(templates[case["template"]])
    kw = dict(bos_token=config["bos_token"], eos_token=config["eos_token"])
    user = [{"role": "user", "content": case["prompt"]}]
    got_prompt = tpl.render(messages=user, add_generation_prompt=True, **kw)
    got_full = tpl.render(messages=user + [{"role": "assistant", "content": case["response"]}],
                          add_generation_prompt=False, **kw)
    for what, got, want in (("prompt", got_prompt, case["want_prompt"]), ("full", got_full, case["want_full"])):
        if got != want:
            bad += 1
            if bad == 1:
                print(f"{case['template']} {what} differs for {case['prompt']!r} / {case['response']!r}:")
                print(f"  jinja   : {got!r}\n  tinyseek: {want!r}")
print(f"{bad} mismatches")
sys.exit(1 if bad else 0)

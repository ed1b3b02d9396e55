#!/usr/bin/python3
"""Regenerates whale's chat-template fixtures in tests/data/tokenizer/chat with Debian's python3-jinja2,
configured the way transformers renders chat templates (apply_chat_template):

  * jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
    loopcontrols extension and a {% generation %} block tag that renders its body;
  * tojson = json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=False);
  * globals raise_exception (raises TemplateError) and strftime_now (here a fixed clock, so that the
    fixtures are reproducible; whale's tests pass the same time);
  * render(messages=..., tools=..., documents=None, add_generation_prompt=..., **special_tokens, **extra).

Templates: DeepSeek-V3's real one (from its tokenizer_config.json), the hand-written R1-, Qwen- and
Llama-3-style ones in chat_templates/, and whale's built-in DeepSeek format (read from
src/tokenizer/chat_template.cc). Plus small probe templates for single features and error cases.

Run from anywhere:  /usr/bin/python3 tools/tokenizer/make_chat_fixtures.py
"""
import datetime
import json
import os
import re

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer", "chat")
FIXED_NOW = datetime.datetime(2024, 7, 26, 9, 5, 7)

DS_BOS = "<｜begin▁of▁sentence｜>"
DS_EOS = "<｜end▁of▁sentence｜>"


class GenerationBlock(Extension):
    """{% generation %}...{% endgeneration %}: renders the body (assistant-mask tracking is off)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment():
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_environment()


def render(source, context):
    """Returns {"expected": text} or {"error": kind}; kind is syntax, raised or runtime."""
    try:
        template = ENV.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"error": "syntax", "python_error": f"{type(e).__name__}: {e}"}
    except (jinja2.exceptions.TemplateError, SyntaxError) as e:
        # Unknown filter/test names fail when compiling; so does Python code the template compiles
        # to (a break outside a loop).
        return {"error": "syntax", "python_error": f"{type(e).__name__}: {e}"}
    try:
        return {"expected": template.render(**context)}
    except jinja2.exceptions.TemplateError as e:
        kind = "raised" if type(e) is jinja2.exceptions.TemplateError else "runtime"
        return {"error": kind, "python_error": f"{type(e).__name__}: {e}"}
    except Exception as e:  # TypeError, ValueError, ... raised by Python operations
        return {"error": "runtime", "python_error": f"{type(e).__name__}: {e}"}


def builtin_source():
    with open(os.path.join(ROOT, "src", "tokenizer", "chat_template.cc"), encoding="utf-8") as f:
        code = f.read()
    match = re.search(r'R"JINJA\(\n(.*?)\)JINJA"', code, re.S)
    return match.group(1)


def call(name, arguments, call_id="call_0"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
        "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Local time (ISO 8601) in a time zone.",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": []}}}

CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "system_multi_turn": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"}],
    "two_system_messages": [
        {"role": "system", "content": "A"}, {"role": "system", "content": "B"},
        {"role": "user", "content": "u"}],
    "unicode_and_newlines": [
        {"role": "system", "content": "  Be nice. \n"},
        {"role": "user", "content": "안녕하세요 👋\n\"quotes\" and 'apostrophes' \\ backslash\ttab  "},
        {"role": "assistant", "content": "こんにちは！\n\n- 一\n- 二"},
        {"role": "user", "content": "<｜User｜> and <|im_start|> inside text"}],
    "empty_content": [{"role": "user", "content": ""}, {"role": "assistant", "content": ""},
                      {"role": "user", "content": "x"}],
    "tool_round_trip": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            call("get_w", "{\"city\": \"Paris\"}"), call("get_t", "{}", "call_1")]},
        {"role": "tool", "content": "20C", "tool_call_id": "call_0"},
        {"role": "tool", "content": "noon", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "It is 20C."}],
    "single_tool_call": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call("get_weather", "{\"city\": \"Paris\"}")]},
        {"role": "tool", "content": "{\"temperature\": 20.5, \"sky\": \"clear\"}"},
    ],
    "tool_call_dict_arguments": [
        {"role": "user", "content": "Weather in Zürich, in F?"},
        {"role": "assistant", "content": None, "tool_calls": [
            call("get_weather", {"city": "Zürich", "unit": "f", "days": 3, "ratio": 0.5,
                                 "hourly": True, "extra": None, "tags": ["a", "b"], "nested": {}})]},
        {"role": "tool", "content": "68F"},
        {"role": "assistant", "content": "About 68°F."}],
    "reasoning_history": [
        {"role": "user", "content": "What is 7*6?"},
        {"role": "assistant", "content": "<think>\n7*6 = 42.\n</think>\n\n42"},
        {"role": "user", "content": "And 6*9?"}],
    "assistant_prefix_content_with_tools": [
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [call("get_time", "{\"tz\": \"UTC\"}")]},
        {"role": "tool", "content": "2024-07-26T09:05:07Z"},
        {"role": "assistant", "content": "It is 09:05 UTC."},
        {"role": "user", "content": "thanks"}],
}

# (template, conversations it can render, tool lists to try, extra variables to try)
TEMPLATE_PLAN = {
    "deepseek-v3": (["single_user", "system_multi_turn", "two_system_messages", "unicode_and_newlines",
                     "empty_content", "tool_round_trip", "single_tool_call", "reasoning_history",
                     "tool_call_dict_arguments"], [None], [{}]),
    "r1-style": (list(CONVERSATIONS), [None], [{}]),
    "qwen-style": (list(CONVERSATIONS), [None, [WEATHER_TOOL, TIME_TOOL]], [{}]),
    "llama3-style": (["single_user", "system_multi_turn", "unicode_and_newlines", "empty_content",
                      "single_tool_call", "tool_call_dict_arguments", "reasoning_history",
                      "tool_round_trip", "two_system_messages"],
                     [None, [WEATHER_TOOL]], [{}, {"date_string": "01 Jan 2025", "tools_in_user_message": False}]),
    "builtin-deepseek": (list(CONVERSATIONS), [None], [{}]),
}

SPECIAL_TOKENS = {
    "deepseek-v3": {"bos_token": DS_BOS, "eos_token": DS_EOS, "pad_token": DS_EOS},
    "r1-style": {"bos_token": DS_BOS, "eos_token": DS_EOS},
    "qwen-style": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "llama3-style": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "builtin-deepseek": {"bos_token": DS_BOS, "eos_token": DS_EOS},
}


def template_sources():
    with open(os.path.join(ROOT, "tests", "data", "tokenizer", "deepseek-v3", "tokenizer_config.json"),
              encoding="utf-8") as f:
        sources = {"deepseek-v3": json.load(f)["chat_template"]}
    for name in ("r1-style", "qwen-style", "llama3-style"):
        with open(os.path.join(HERE, "chat_templates", name + ".jinja"), encoding="utf-8") as f:
            sources[name] = f.read()
    sources["builtin-deepseek"] = builtin_source()
    return sources


def conversation_cases(sources):
    cases = []
    for name, (conversations, tool_lists, extras) in TEMPLATE_PLAN.items():
        for conversation in conversations:
            for tools in tool_lists:
                for extra in extras:
                    for agp in (False, True):
                        context = dict(SPECIAL_TOKENS[name])
                        context.update(extra)
                        context.update(messages=CONVERSATIONS[conversation], tools=tools, documents=None,
                                       add_generation_prompt=agp)
                        case = {"template": name, "conversation": conversation, "tools": tools,
                                "extra": extra, "add_generation_prompt": agp}
                        case.update(render(sources[name], context))
                        cases.append(case)
    return cases


# Small templates, each probing one behaviour; `context` are the render variables.
PROBES = [
    # whitespace control, trim_blocks, lstrip_blocks, comments, trailing newline
    ("x\n    {% if true %}\n    y\n    {% endif %}\nz", {}),
    ("x\n    {{ 'v' }}\n", {}),
    ("a\n\n", {}), ("a\r\nb\rc\n", {}),
    ("  {%- if true -%}  \n  x  \n  {%- endif -%}  ", {}),
    ("{% if true +%}\nkeep{%+ if true %} y{% endif %}{% endif %}", {}),
    ("a {# comment #}\nb\n  {# indented comment #}\nc{#- strip -#}  d", {}),
    ("{{ 'a' -}}   \n  {{- 'b' }} {{ 'c' }}", {}),
    ("\u3000{%- if true %}x{% endif %}", {}),
    ("{% raw %}{{ not rendered }}{% endraw %}|{%- raw -%}  {% x %}  {%- endraw -%}|", {}),
    ("line1\n{% for i in range(3) %}\n  item {{ i }}\n{% endfor %}\nend", {}),
    # literals and printing (Python str/repr)
    ("{{ none }}|{{ true }}|{{ False }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1e-5 }}|{{ 10/4 }}|{{ 10//4 }}|{{ -7//2 }}|{{ -7 % 3 }}|{{ 2**10 }}|{{ -2 ** 2 }}", {}),
    ("{{ [1, 'a', none, true, \"it's\", 'say \"hi\"', 1.5] }}|{{ {'k': 'v', 'n': [1, (2, 3)]} }}|{{ (1,) }}|{{ () }}", {}),
    ("{{ x }}|{{ x.y is defined }}|{{ y is defined }}|{{ y is none }}|{{ z }}", {"x": {"y": None}, "y": None}),
    ("{{ 'a\\nb\\tc\\\\d\\x41\\u00e9\\U0001F600\\101\\q' }}|{{ \"adjacent\" 'strings' }}", {}),
    ("{{ '\\x00\\x7f\\u200b\\u3000' }}|{{ ['\\x00\\x7f\\u200b\\u3000\\n\\'', 'é😀'] }}", {}),
    ("{{ 1 + 2 ~ 3 }}", {}), ("{{ 'a' ~ 1 ~ none ~ x }}", {}),
    # precedence
    ("{{ not x is defined }}|{{ 'a' + y | trim + 'b' }}|{{ xs|length - 1 }}|{{ 1 if false }}|{{ 2 if false else 3 if true else 4 }}",
     {"y": "  mid  ", "xs": [1, 2, 3]}),
    ("{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'b' in 'abc' }}|{{ 'x' not in ['y'] }}|{{ 'k' in {'k': 1} }}|{{ 1 == 1.0 }}|{{ 1 == true }}|{{ '1' == 1 }}", {}),
    ("{{ a or b }}|{{ a and b }}|{{ b or 'fallback' }}|{{ none or [] }}", {"a": "A", "b": ""}),
    # strings and methods
    ("{{ s.upper() }}|{{ s.lower() }}|{{ s.title() }}|{{ s.capitalize() }}|{{ s.strip() }}|{{ s.split() }}|{{ s.split('a') }}|{{ s.split(' ', 1) }}|{{ s.rsplit(' ', 1) }}",
     {"s": "  straße ΣΑΣ aBc  dEf  "}),
    ("{{ s.startswith('ab') }}|{{ s.endswith(('x', 'yz')) }}|{{ s.replace('b', 'B') }}|{{ s.replace('', '-') }}|{{ s.find('c') }}|{{ s.count('b') }}|{{ s.lstrip('a') }}|{{ s.rstrip('z') }}|{{ s.strip('az') }}",
     {"s": "abcbxyz"}),
    ("{{ s[0] }}|{{ s[-1] }}|{{ s[1:3] }}|{{ s[::-1] }}|{{ s[::2] }}|{{ s[10] }}|{{ s[-100:2] }}|{{ s|length }}",
     {"s": "héllo😀"}),
    ("{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::-1] }}|{{ xs[5] }}|{{ xs[-1] }}|{{ (xs|length) }}|{{ xs.index(2) }}|{{ xs.count(1) }}",
     {"xs": [1, 2, 3]}),
    ("{{ '{} and {}'.format('a', 1) }}|{{ '%s=%d' % ('x', 3) }}|{{ '%.2f' % 3.14159 }}|{{ '%5s|%-5s|' % ('ab', 'cd') }}", {}),
    ("{{ s.split('</think>')[-1].strip() }}|{{ '</think>' in s }}", {"s": "<think>r</think>\n\nanswer "}),
    ("{{ 'ab\\ncd\\r\\nef'.splitlines() }}|{{ 'x'.join(['a', 'b']) }}|{{ 'abc'.isalpha() }}|{{ '12'.isdigit() }}|{{ 'AB'.isupper() }}|{{ 'ab'.islower() }}", {}),
    # filters
    ("{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ none|trim }}|{{ x|length }}|{{ x|count }}|{{ 'abc'|upper }}|{{ 'ÀB'|lower }}|{{ 'hello world-x'|title }}|{{ 'hELLO'|capitalize }}", {}),
    ("{{ xs|join(', ') }}|{{ xs|join }}|{{ xs|first }}|{{ xs|last }}|{{ xs|reverse|list }}|{{ xs|sort }}|{{ xs|unique|list }}|{{ xs|min }}|{{ xs|max }}|{{ xs|sum }}",
     {"xs": [3, 1, 2, 3]}),
    ("{{ words|sort }}|{{ words|sort(reverse=true) }}|{{ words|sort(case_sensitive=true) }}|{{ words|unique|list }}", {"words": ["b", "A", "a", "C"]}),
    ("{{ d|items|list }}|{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}|{{ d|dictsort }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get('a') }}|{{ d.get('z', 'dflt') }}",
     {"d": {"b": 2, "a": 1}}),
    ("{{ x|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}|{{ none|d('n') }}|{{ 5|string }}|{{ '42'|int + 1 }}|{{ '3.5'|float }}|{{ 'x'|int }}|{{ 3.9|int }}|{{ -3|abs }}|{{ 2.5|round }}|{{ 3.14159|round(2) }}", {}),
    ("{{ users|map(attribute='name')|join(',') }}|{{ users|selectattr('admin')|map(attribute='name')|list }}|{{ users|rejectattr('admin')|list|length }}|{{ users|selectattr('name', 'equalto', 'bo')|list|length }}|{{ nums|select('odd')|list }}|{{ nums|reject('divisibleby', 3)|list }}|{{ names|map('upper')|list }}",
     {"users": [{"name": "al", "admin": True}, {"name": "bo", "admin": False}], "nums": [1, 2, 3, 4, 5, 6], "names": ["a", "b"]}),
    ("{{ builtin_tools | reject('equalto', 'code_interpreter') | join(', ') }}", {"builtin_tools": ["brave_search", "code_interpreter", "wolfram"]}),
    ("{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}", {}),
    ("{{ '<a href=\"x\">&</a>'|e }}|{{ '%s-%s'|format(1, 2) }}|{{ 'one two  three'|wordcount }}", {}),
    # tojson (transformers' json.dumps)
    ("{{ v|tojson }}|{{ v|tojson(indent=2) }}|{{ 'é \"q\" <tag> \\n'|tojson }}|{{ 'x'|tojson }}|{{ [[], {}]|tojson(indent=4) }}|{{ v|tojson(sort_keys=true) }}|{{ v|tojson(separators=(',', ':')) }}",
     {"v": {"b": [1, 2.5, None, True, "s"], "a": {"nested": "ü"}, "f": 1e-7, "g": 1e16, "h": 100.0}}),
    ("{{ '\\u0001\\u001f\\u007f\\u2028'|tojson }}|{{ 'ü😀'|tojson(ensure_ascii=true) }}", {}),
    # tests
    ("{{ x is string }}|{{ x is mapping }}|{{ x is iterable }}|{{ x is sequence }}|{{ d is mapping }}|{{ d is iterable }}|{{ n is number }}|{{ n is integer }}|{{ f is float }}|{{ b is boolean }}|{{ b is true }}|{{ b is false }}|{{ none is none }}|{{ u is undefined }}|{{ n is odd }}|{{ n is even }}|{{ 9 is divisibleby 3 }}|{{ 'a' is in 'cat' }}|{{ 2 is in [1, 2] }}|{{ 'ab' is lower }}|{{ 'AB' is upper }}|{{ 1 is eq 1 }}|{{ 1 is ne 2 }}|{{ 1 is lt 2 }}|{{ true is number }}|{{ true is integer }}",
     {"x": "s", "d": {}, "n": 3, "f": 1.5, "b": True}),
    ("{{ enable_thinking is defined and enable_thinking is false }}|{{ flag is sameas false }}|{{ xs is not none }}", {"enable_thinking": False, "flag": False, "xs": []}),
    # statements and scoping
    ("{% set x = 'outer' %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}[{{ x }}]{% endfor %}[{{ x }}]", {}),
    ("{% set ns = namespace(n=0, items=[]) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.n }} {{ ns.items }}", {}),
    ("{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }}/{{ loop.cycle('o', 'e') }};{% endfor %}", {"xs": ["a", "b", "c"]}),
    ("{% for x in xs if x > 1 %}{{ loop.index }}:{{ x }} {% else %}empty{% endfor %}|{% for x in [] %}x{% else %}none{% endfor %}", {"xs": [1, 2, 3]}),
    ("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}{% for c in 'hé' %}[{{ c }}]{% endfor %}{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}", {}),
    ("{% if a %}A{% elif b %}B{% else %}C{% endif %}{% if not a and not b %}-none{% endif %}", {"a": 0, "b": [0]}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 'x') %}{{ t }}{% set messages = messages[1:] %}{{ messages|length }}", {"messages": [1, 2, 3]}),
    ("{% set block %}  inner {{ 1 + 1 }}  {% endset %}[{{ block }}]{% set up | upper %}shout{% endset %}{{ up }}", {}),
    ("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('al') }} {{ greet('bo', punct='?') }} {{ greet(name='cy') }}", {}),
    ("{% filter upper %}shout {{ 'this' }}{% endfilter %}|{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}", {}),
    ("{% generation %}gen {{ 1 }}{% endgeneration %}|{%- generation -%} x {%- endgeneration -%}|", {}),
    ("{% if messages[0]['role'] == 'system' %}{{ messages[0]['content']|trim }}{% endif %}{{ messages[0].role }}{{ messages[0].missing }}", {"messages": [{"role": "system", "content": " S "}]}),
    ("{{ m.items is callable }}|{{ m['items'] }}|{{ m.get('items') }}|{{ m.items()|list }}", {"m": {"items": 5}}),
    ("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%dT%H:%M:%S') }}", {}),
    ("{{ range(3)|list }}|{{ range(1, 10, 3)|list }}|{{ range(5, 0, -2)|list }}|{{ dict(a=1, b='x') }}|{{ namespace(a=1).a }}", {}),
    ("{{ messages[::-1][0].content }}|{{ (messages|last).content }}|{{ messages|length - 1 }}", {"messages": [{"content": "first"}, {"content": "last"}]}),
    # errors (jinja2 raises; whale must too)
    ("{{ 'a' + none }}", {}), ("{{ 'a' + 1 }}", {}), ("{{ x.y.z }}", {}), ("{{ x + 'a' }}", {}),
    ("{% set l = [] %}{{ l.append(1) }}", {}), ("{% set d = {} %}{{ d.update({'a': 1}) }}", {}),
    ("{{ raise_exception('custom failure: ' ~ 42) }}", {}),
    ("{{ x | nosuchfilter }}", {}), ("{{ x is nosuchtest }}", {}), ("{% if %}{% endif %}", {}),
    ("{% if true %}unclosed", {}), ("{{ 'unterminated }}", {}), ("{% for %}", {}), ("{% endfor %}", {}),
    ("{{ 1 + }}", {}), ("{% set %}", {}), ("{% do x %}", {}), ("{% break %}", {}), ("{{ (1, 2 }}", {}),
    ("{% include 'x.html' %}", {}), ("{# unclosed comment", {}), ("{{ 1 / 0 }}", {}), ("{{ [1] < 'a' }}", {}),
    ("{% for x in none %}{% endfor %}", {}), ("{{ range(200000)|length }}", {}), ("{{ 'x' in none }}", {}),
    ("{{ none.attr }}|{{ none['k'] }}|{{ 5.attr }}", {}), ("{{ x._private }}", {"x": {"_private": 1}}),
    ("{% set x.attr = 1 %}", {"x": {}}), ("{% set a, b = [1] %}", {}),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    sources = template_sources()
    for name, source in sources.items():
        if name == "deepseek-v3":
            continue  # tests read it from deepseek-v3/tokenizer_config.json
        if name == "builtin-deepseek":
            continue  # tests use the C++ copy itself
        with open(os.path.join(OUT, name + ".jinja"), "w", encoding="utf-8") as f:
            f.write(source)
    cases = conversation_cases(sources)
    probes = []
    for template, context in PROBES:
        probe = {"template": template, "context": context}
        probe.update(render(template, context))
        probes.append(probe)
    fixture = {
        "generator": f"tools/tokenizer/make_chat_fixtures.py, jinja2 {jinja2.__version__}",
        "now": FIXED_NOW.strftime("%Y-%m-%dT%H:%M:%S"),
        "special_tokens": SPECIAL_TOKENS,
        "conversations": CONVERSATIONS,
        "cases": cases,
        "probes": probes,
    }
    with open(os.path.join(OUT, "fixtures.json"), "w", encoding="utf-8") as f:
        f.write("{\n")
        items = list(fixture.items())
        for i, (key, value) in enumerate(items):
            f.write(json.dumps(key) + ": ")
            if isinstance(value, list):
                f.write("[\n" + ",\n".join(json.dumps(v, ensure_ascii=False) for v in value) + "\n]")
            else:
                f.write(json.dumps(value, ensure_ascii=False))
            f.write(",\n" if i + 1 < len(items) else "\n")
        f.write("}\n")
    errors = sum(1 for c in cases if "error" in c)
    print(f"wrote {OUT}: {len(cases)} conversation cases ({errors} errors), {len(probes)} probes "
          f"({sum(1 for p in probes if 'error' in p)} errors), jinja2 {jinja2.__version__}")


if __name__ == "__main__":
    main()

// The Jinja language, construct by construct: every template here is rendered by tailor and by python3-jinja2
// (configured as transformers configures it) and the outputs must be byte-identical, or both must fail.
#include <gtest/gtest.h>

#include "reference.h"

namespace tailor::chat_template_test {
namespace {

OrderedJson context() {
  OrderedJson ctx = OrderedJson::parse(R"({
    "d": {"a": 1, "b": [1, 2], "items": "shadowed", "nested": {"k": [10, 20, {"z": "deep"}]}},
    "x": [[1, 2], [3, 4]],
    "n": null, "t": true, "f": 1.5, "i": -7, "s": "Hello, World", "empty": "", "zero": 0,
    "u": "héllo wörld ✓ 😀 日本",
    "messages": [
      {"role": "system", "content": "You are a bot."},
      {"role": "user", "content": "Hi  there, aé \"q\" {x}"},
      {"role": "assistant", "content": "Hello!"}
    ]
  })");
  return ctx;
}

void check(const std::vector<std::string>& templates, const std::string& label) {
  expect_same_as_python(template_cases(templates, context()), label);
}

TEST(ChatTemplateLanguage, WhitespaceControl) {
  check(
      {
          "a\n{% if true %}\nb\n{% endif %}\nc\n",
          "a\n  {% if true %}\n  b\n  {% endif %}\nc",
          "a  {% if true %}  b  {% endif %}  c",
          "  {%- if true -%}  b  {%- endif -%}  \n",
          "x\n\t {% for i in [1,2] %}\n\t {{ i }}\n\t {% endfor %}\ny",
          "{% for i in [1,2] +%}\n{{ i }}{% endfor %}",
          "a\n   {%+ if true %}b{% endif %}",
          "a\n  {{ 'x' }}\n  {# comment #}\n  b",
          "a {#- c -#}   b {# c #}\nc {#+ c +#}\nd",
          "{# multi\nline {{ not parsed }} {% nor this %}\n#}\nafter",
          "{% raw %}{{ x }}{% endraw %}|{%- raw -%}  {% y %}  {%- endraw -%}  |",
          "a\n  {% raw %}\n  {{ raw }}\n  {% endraw %}\nb",
          "a\r\nb\rc\r\n{% if true %}\r\nd\r\n{% endif %}\r\n",
          "trailing newlines\n\n",
          "line1\n{{- ' x ' -}}\nline2",
          "{{ 'a' }}\n{{ 'b' }}\n",
          "  {% set x = 1 %}\n  {{ x }}",
          "{%- for m in ['a','b'] %}\n  {{- m }}\n{%- endfor %}",
          "{% if 1 %}{% endif %}\n\nx",
          "é {% if true %}\u00a0 {% endif %}\u3000{{- 'z' }}",
          "\t\t{% for i in range(2) %}\n\t\t\t{{ i }}\n\t\t{% endfor %}\n",
          "{{- '  lead' }}   {{- 'join' -}}   \n\n   end",
          "{%- if true %}\n\n  text\n{% endif -%}\n\n",
          "a {{-1}} b",
      },
      "whitespace");
}

TEST(ChatTemplateLanguage, LiteralsAndLexing) {
  check(
      {
          "{{ 'a' 'b' \"c\" }}",
          "{{ 'a\\tb\\x41\\u00e9\\U0001F600\\101\\q\\\\\\'' }}",
          "{{ \"it's\" }} {{ 'say \"hi\"' }}",
          "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1.5e3 }} {{ 1e-3 }} {{ 2.5E+2 }} {{ 007 if false "
          "else 0 }}",
          "{{ x.0 }} {{ x.1.0 }} {{ d.nested.k.2.z }}",
          "{{ (1, 2)[0] }} {{ () }} {{ (1,) }} {{ [1,][0] }} {{ {'a': 1,} }} {{ [] }} {{ {} }}",
          "{{ true }} {{ True }} {{ false }} {{ False }} {{ none }} {{ None }}",
          "{{ {'a': {'b': [1, {'c': none}]}} }}",
          "{{ 'multi\nline' }}",
          "{{ { 'k' : [ 1 , 2 ] } }}",
      },
      "literals");
}

TEST(ChatTemplateLanguage, Operators) {
  check(
      {
          "{{ 1 + 2 * 3 - 4 / 2 }} {{ 2 ** 3 ** 2 }} {{ 7 % 3 * 2 }} {{ 'a' ~ 1 + 2 }} {{ -3|abs }} {{ -2 ** "
          "2 }}",
          "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 4 / 2 }} {{ 2 ** -1 }}",
          "{{ 10 % -3 }} {{ 5.5 % 2 }} {{ -5.5 // 2 }} {{ 1 + 1.5 }} {{ true + 1 }} {{ 3 - true }}",
          "{{ not true and false }} {{ not (true and false) }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 <= 1 >= "
          "0 }}",
          "{{ 1 in [1] }} {{ 1 not in [1] }} {{ 'a' in 'cat' }} {{ 'x' in {'x': 1} }} {{ 1 in {'x': 1} }}",
          "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }} {{ (1,) == [1] }} {{ {'a': "
          "1} == {'a': 1} }}",
          "{{ 'b' > 'a' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) < (1, 2, 0) }} {{ 'Z' < 'a' }} {{ 'é' > 'z' }}",
          "{{ true and 'x' }} {{ false or 'y' }} {{ 0 or [] or 'z' }} {{ '' and 'q' }}|{{ none or 0 }}",
          "{{ 'ab' * 2 }} {{ [0] * 3 }} {{ 2 * 'c' }} {{ 'a' * -1 }}|{{ (1, 2) * 2 }}",
          "{{ [1, 2] + [3] }} {{ (1,) + (2,) }} {{ 'a' + 'b' }}",
          "{{ 'a' ~ none ~ true ~ 1.0 ~ [none] ~ {'k': none} ~ n }}",
          "{{ 'a' if true else 'b' }} {{ 'a' if false else 'b' if false else 'c' }} [{{ 'a' if false }}]",
          "{{ (1 if t else 2) + 3 }} {{ 1 if n is none else 2 }}",
          "{{ -f }} {{ +i }} {{ -(-i) }} {{ not empty }} {{ not s }}",
          "{{ 1e300 * 1e10 }} {{ -1e300 * 1e10 }} {{ (1e300 * 1e10) - (1e300 * 1e10) }}",
      },
      "operators");
}

TEST(ChatTemplateLanguage, IfAndSet) {
  check(
      {
          "{% if t %}T{% elif n %}N{% else %}E{% endif %}{% if n %}1{% elif zero %}2{% elif s %}3{% endif %}",
          "{% if empty %}no{% else %}yes{% endif %}{% if [] %}no{% endif %}{% if {} %}no{% endif %}{% if 0.0 "
          "%}no{% endif %}",
          "{% if x is not defined %}undef{% endif %}{% if d.a is not none %}ok{% endif %}{% if missing %}m{% "
          "endif %}",
          "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = a, b %}{{ c }}",
          "{% set x %}inner {{ 1 }}{% endset %}[{{ x }}]",
          "{% set x | upper | replace('A', '4') %}abc{% endset %}{{ x }}",
          "{% if true %}{% set inner = 'set in if' %}{% endif %}{{ inner }}",
          "{% set ns = namespace(a=1, b='x') %}{% set ns.a = ns.a + 1 %}{% set ns.c = [ns.b] %}{{ ns.a }}{{ "
          "ns.c }}{{ ns }}",
          "{% set ns = namespace(d) %}{{ ns.a }}{{ ns.b }}",
          "{% set messages = messages[1:] %}{{ messages|length }}{{ messages[0].role }}",
      },
      "if/set");
}

TEST(ChatTemplateLanguage, ForLoops) {
  check(
      {
          "{% for x in [1,2,3] if x != 2 %}{{ loop.index }}/{{ loop.length }}:{{ x }} {% endfor %}",
          "{% for x in [] %}no{% else %}empty{% endfor %}{% for x in [1] %}one{% else %}no{% endfor %}",
          "{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% if x == 3 %}{% break %}{% "
          "endif %}"
          "{% endfor %}",
          "{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}{% for a, b in x %}{{ a * b }},{% endfor "
          "%}",
          "{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}{{ v }}{% endfor %}{% for k in d %}{{ k }},{% "
          "endfor %}",
          "{% for k, v in d|dictsort %}{{ k }};{% endfor %}{% for k, v in d|items %}{{ k }}={{ v }};{% "
          "endfor %}",
          "{% for c in 'héy' %}{{ c }}.{% endfor %}{% for x in missing %}never{% endfor %}",
          "{% for x in [1,2,3] %}{{ loop.first }}{{ loop.last }}{{ loop.revindex }}{{ loop.revindex0 }}"
          "{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a','b') }}{{ loop.depth }} {% endfor %}",
          "{% for a in [1,2] %}{% for b in [3,4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index "
          "}}|{% endfor %}",
          "{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = 5 %}{{ x }}{% endfor %}{{ x }}",
          "{% for m in messages %}{{ m.role|upper }}:{{ m.content|trim }};{% endfor %}",
          "{% for m in messages[::-1] %}{{ loop.index0 }}{{ m.role[0] }}{% endfor %}",
          "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}"
          "{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}",
          "{% for x in [1, 2, 1] %}{% if loop.changed(x) %}c{% endif %}{{ x }}{% endfor %}",
          "{% set ns = namespace(found=false) %}{% for m in messages %}{% if m.role == 'user' %}"
          "{% set ns.found = loop.index0 %}{% endif %}{% endfor %}{{ ns.found }}",
          "{% for x in [1, 2] %}{% set y = x * 10 %}{{ y }}{% endfor %}[{{ y }}]",
      },
      "for");
}

TEST(ChatTemplateLanguage, MacrosCallFilterWith) {
  check(
      {
          "{% macro m(a, b='B', c=none) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m(1) }}|{{ m(1, 2, 3) }}|"
          "{{ m(a=5, c=6) }}|{{ m() }}",
          "{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, x=3) }}",
          "{% macro m(x) %}<{{ caller(x) }}>{% endmacro %}{% call(y) m(5) %}got {{ y }}{% endcall %}",
          "{% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}",
          "{% macro m(a, b=a) %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m }}",
          "{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ m() }}",
          "{% macro m() %}{{ y }}{% endmacro %}{% for y in [7] %}[{{ m() }}]{% endfor %}",
          "{% macro m(s) %}{{ s|upper }}{% endmacro %}{{ m('a') + '<b>' }}|{{ m('a') ~ 1 }}|{{ m('x')|length "
          "}}",
          "{% filter upper %}hello {{ 'w' }}{% endfilter %}{% filter replace('l', 'L')|trim %}  hello  {% "
          "endfilter %}",
          "{% with a = 1, b = 2 %}{{ a }}{{ b }}{% endwith %}{{ a }}",
          "{% with a=1, b=a %}{{ a }}[{{ b }}]{% endwith %}",
          "{% generation %}assistant text {{ 1 }}{% endgeneration %}",
          "{% print 'printed', 1 %}",
      },
      "macro/call/filter/with");
}

TEST(ChatTemplateLanguage, Filters) {
  check(
      {
          "{{ x|default('dflt') }} {{ d.a|default('dflt') }} {{ ''|default('dflt') }} {{ none|d('n', true) "
          "}} "
          "{{ missing|default(none) }}",
          "{{ 'abc'|length }} {{ u|length }} {{ d|length }} {{ [1,2]|count }} {{ 'a b c'|wordcount }} {{ "
          "missing|length }}",
          "{{ 'x'|string }} {{ 1|string }} {{ [1]|string }} {{ none|string }} {{ 1.5|int }} {{ '42'|int + 1 "
          "}} "
          "{{ 'x'|int(7) }} {{ '3'|float }} {{ '0x1A'|int(0, 16) }} {{ ' 12 '|int }} {{ '1e3'|int }} {{ "
          "true|int }}",
          "{{ '3.7'|int }} {{ 'x'|float }} {{ ' 7 '|float }} {{ none|int }} {{ '1_000'|int }} {{ 'inf'|float "
          "}}",
          "{{ [3, 1, 2]|sort(reverse=true) }} {{ ['b', 'a', 'C']|sort }} {{ ['b', 'a', "
          "'C']|sort(case_sensitive=true) }} "
          "{{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }}",
          "{{ [1,2,3]|first }} {{ [1,2,3]|last }} {{ 'abc'|first }} {{ 'abc'|last }} {{ []|last }}|{{ "
          "[]|first }}|"
          "{{ d|first }}",
          "{{ [1,2,2,3]|unique|list }} {{ ['a', 'A', 'b']|unique|list }} {{ [1,5,3]|max }} {{ [4,2,8]|min }} "
          "{{ ['b', 'A']|max }} {{ [{'v': 3}, {'v': 9}]|max(attribute='v') }}",
          "{{ 'a\\nb'|indent }} {{ 'a\\nb'|indent(first=true) }} {{ 'a\\n\\nb'|indent(2, blank=true) }} "
          "{{ 'a\\nb'|indent('> ') }}",
          "{{ '%s and %s' % ('a', 'b') }} {{ '%d%%' % 50 }} {{ '%.1f' % 2.25 }} {{ '%5s|%-5s|' % ('a', 'b') "
          "}} "
          "{{ '%s'|format(1) }} {{ '%(x)s'|format(x=2) }} {{ '%03d|%x|%r' % (5, 255, 'q') }}",
          "{{ 'aBc'|capitalize }} {{ 'ab cd-ef (gh'|title }} {{ 'Ab'|lower }} {{ 'ab'|upper }} {{ "
          "'ab'|center(7) }}|",
          "{{ 'hello world foo'|truncate(9) }}|{{ 'abcdef'|truncate(5, true, '..', 0) }}|{{ "
          "'short'|truncate(10) }}",
          "{{ '<&>\"\\''|escape }} {{ '<b>'|safe }} {{ ('<' | safe) ~ '>' }} {{ ('<'|safe) + '<' }} {{ '<x> "
          "a  b'|striptags }}",
          "{{ [1,2,3]|select('odd')|list }} {{ [1,2,3]|reject('even')|list }} {{ "
          "[1,2,3]|map('string')|join('-') }} "
          "{{ [-1]|map('abs')|list }} {{ [0, 1, '']|select|list }}",
          "{{ messages|selectattr('role', 'equalto', 'user')|list|length }} "
          "{{ messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|first }} "
          "{{ messages|map(attribute='role')|join(',') }} {{ [{}, {'a': 1}]|map(attribute='a', "
          "default=0)|list }}",
          "{{ {'b': 1, 'a': 2}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value', reverse=true) }} "
          "{{ {'a': 1}|items|list }} {{ {'B': 1, 'a': 2}|dictsort(true) }}",
          "{{ range(5)|batch(2)|list }} {{ range(5)|slice(2)|list }} {{ [1.5, 2]|sum }} {{ 2.567|round(1) }} "
          "{{ 2.5|round(0, 'floor') }} {{ 2.5|round }} {{ 3.5|round }} {{ 5|round }} {{ [{'p': 2}, {'p': "
          "3}]|sum(attribute='p') }}",
          "{{ 'abc'|reverse }} {{ [1,2]|reverse|list }} {{ d|list }} {{ 'ab'|list }} {{ 'a-b'|replace('-', "
          "'+') }} "
          "{{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '.') }}",
          "{{ '  x  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ ' \\u00a0x\\u3000 '|trim }}|{{ [1, 2]|join }}|"
          "{{ [{'n': 'a'}, {'n': 'b'}]|join('/', attribute='n') }}",
          "{{ d|attr('a') }}|{{ d|attr('keys') is defined }}|{{ 'x'|attr('upper') is defined }}",
          "{{ [1,2]|map('string') is defined }}{% if []|select %}T{% endif %}{{ [1]|select is iterable }}",
      },
      "filters");
}

TEST(ChatTemplateLanguage, Tojson) {
  check(
      {
          "{{ messages|tojson }}",
          "{{ messages|tojson(indent=2) }}",
          "{{ messages[0]|tojson(indent=4, sort_keys=true) }}",
          "{{ {'b': 2, 'a': [1, 'x', none, true, 1.5]}|tojson(sort_keys=true) }} {{ 'é'|tojson(true) }} "
          "{{ {'a': 1}|tojson(separators=(',', ':')) }} {{ {'a': [1]}|tojson(indent='\\t') }}",
          "{{ 1e100|tojson }} {{ (0.1+0.2)|tojson }} {{ 1.0|tojson }} {{ '\\x01\\x7f\\u2028'|tojson }} {{ "
          "-0.0|tojson }}",
          "{{ [1, [2, [3]]]|tojson }} {{ {'a': {}}|tojson(indent=1) }} {{ []|tojson(indent=2) }} {{ "
          "'ü€😀'|tojson }} "
          "{{ 'ü€😀'|tojson(ensure_ascii=true) }} {{ {'a': 1}|tojson(indent=0) }}",
          "{{ u|tojson }} {{ s|tojson }} {{ d|tojson }} {{ x|tojson }} {{ (1, 2)|tojson }} {{ "
          "'a\\\\b\\\"c\\n\\t\\r\\b\\f'|tojson }}",
          "{{ {'k': 'v'}|tojson(4) }}",
      },
      "tojson");
}

TEST(ChatTemplateLanguage, Tests) {
  check(
      {
          "{{ 'x' is string }} {{ 1 is number }} {{ true is number }} {{ none is none }} {{ {} is mapping }} "
          "{{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ missing is iterable }}",
          "{{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ 1 is boolean }} {{ false is false "
          "}} "
          "{{ true is true }} {{ 'AB' is upper }} {{ 'ab' is lower }} {{ 'aB' is lower }}",
          "{{ 7 is divisibleby 3 }} {{ 6 is divisibleby(3) }} {{ 3.0 is odd }} {{ 4 is even }} {{ 'a' is in "
          "'abc' }} "
          "{{ 1 is sameas 1 }} {{ none is sameas none }}",
          "{{ missing is defined }} {{ missing is undefined }} {{ d.zz is defined }} {{ d.a is defined }} "
          "{{ n is defined }} {{ n is none }} {{ n is not none }}",
          "{{ 'x' is sequence }} {{ d is sequence }} {{ [] is sequence }} {{ 1 is sequence }} {{ missing is "
          "sequence }} "
          "{{ range is callable }} {{ 'x' is callable }}",
          "{{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is le 2 }} {{ 3 is gt 2 "
          "}} "
          "{{ 3 is ge 4 }} {{ 2 is greaterthan 1 }} {{ 1 is lessthan 1 }} {{ 'x' is == 'x' }}",
          "{{ 'upper' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }} {{ '<'|safe is escaped }} {{ "
          "'<' is escaped }}",
      },
      "tests");
}

TEST(ChatTemplateLanguage, Methods) {
  check(
      {
          "{{ '  x  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  x'.lstrip() }}|{{ 'x  '.rstrip() }}|{{ "
          "'a-b'.split('-') }}",
          "{{ 'abc'.upper() }} {{ 'ABC'.lower() }} {{ 'hello world'.title() }} {{ \"they're\".title() }} "
          "{{ 'a.b'.replace('.', '/') }} {{ 'ab'.startswith('a') }} {{ 'ab'.endswith('b') }} "
          "{{ 'abc'.startswith(('x', 'a')) }} {{ 'abc'.startswith('b', 1) }}",
          "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' "
          "', 1) }} "
          "{{ ' a b  '.split(none, 1) }} {{ 'a\\nb\\r\\nc'.splitlines() }}",
          "{{ '{0} {1}'.format('a', 'b') }} {{ '{x}!'.format(x=3) }} {{ '{:.3f}'.format(3.14159) }} "
          "{{ '{:>5}|{:<5}|{:^5}'.format('a','b','c') }} {{ '{:,}'.format(1234567) }} {{ "
          "'{a[0]}{b.c}'.format(a=[1], b={'c': 2}) }} "
          "{{ '{{}}{}'.format(1) }} {{ '{!r}'.format('q') }} {{ '{:05d}'.format(42) }} {{ "
          "'{:+.1%}'.format(0.25) }}",
          "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 5) }} {{ d.keys()|list }} {{ "
          "d.values()|list|length }} "
          "{{ d['a'] }} {{ d.a }} {{ d['items'] }} {{ d.items is defined }} {{ d.items()|list|length }}",
          "{{ d.items() }} {{ d.keys() }} {{ {'a': 1}.values() }} {{ 'keys' in d.keys() }} {{ 'a' in "
          "d.keys() }}",
          "{{ 'x'.join(['a', 'b']) }} {{ ', '.join(messages|map(attribute='role')) }} {{ [1, 2, 1].count(1) "
          "}} "
          "{{ [5, 6].index(6) }}",
          "{{ 'abc'.find('z') }} {{ 'abcb'.rfind('b') }} {{ 'aaa'.count('a') }} {{ 'Hi'.swapcase() }} "
          "{{ 'a b'.partition(' ') }} {{ 'ab'.removeprefix('a') }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} "
          "{{ 'x'.center(5, '*') }} {{ 'ab'.ljust(4,'.') }} {{ '5'.zfill(3) }} {{ 'héllo'.find('l') }}",
          "{{ messages[0].content.split()|length }} {{ messages[1].content.split('a') }} {{ "
          "messages[0].content[::-1] }}",
          "{{ 'ÀÉÎ'|lower }} {{ 'àéî'|upper }} {{ 'straße'.upper() }} {{ 'ǆ'.title() }} {{ 'hELLO "
          "wORLD'|capitalize }}",
          "{{ d.update is defined }} {{ [1].append is defined }} {{ d.copy() == d }}",
      },
      "methods");
}

TEST(ChatTemplateLanguage, UndefinedAndPrinting) {
  check(
      {
          "[{{ missing }}] {{ missing is defined }} {{ missing|length }} {{ 'a' in missing }} {{ missing ~ "
          "'x' }} "
          "{% if not missing %}falsy{% endif %} {{ missing == missing }} {{ missing|default('dd') }}",
          "{{ d.zz }}|{{ d['zz'] }}|{{ none.x }}|{{ x[9] }}|{{ 'abc'[10] }}|{{ s.nope }}|{{ (1).real }}",
          "{{ [1, 'a', none, true, 1.5, 1e20, 1e-7, [], {}] }} {{ (1,) }}{{ (1, 2) }} {{ {'k': (1, 'v')} }}",
          "{{ \"it's\" }} {{ ['it\\'s', 'a\"b', 'x\\ny\\t', 'é\\x00\\x7f', 'both \\' and \"', '\\\\'] }}",
          "{{ [u, '\\u00a0', '\\u200b', '\\u2028', '😀', '\\x85'] }}",
          "{{ 1.0 }} {{ 1e16 }} {{ 1e15 }} {{ 1.5e-5 }} {{ 0.0001 }} {{ 0.1 + 0.2 }} {{ 100.0 }} {{ 1e22 }} "
          "{{ 123456789012345678.0 }} {{ 0.000123 }} {{ 5e-324 }} {{ -0.0 }} {{ 2.5e-310 }} {{ "
          "1.7976931348623157e308 }}",
          "{{ f }} {{ i }} {{ n }} {{ t }} {{ d }} {{ x }} {{ messages[1] }}",
          "{% for m in messages %}{{ loop }}{% endfor %} {{ namespace(a=[1]) }}",
          "{{ d.items() }}|{{ d.values() }}",
      },
      "undefined/printing");
}

TEST(ChatTemplateLanguage, Scoping) {
  check(
      {
          "{% filter upper %}{% set y = 1 %}{% endfilter %}[{{ y }}]",
          "{% set x %}{% set y = 2 %}{% endset %}[{{ y }}]",
          "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{% set y = 3 %}{% endcall %}[{{ y }}]",
          "{% with %}{% set y = 4 %}{% endwith %}[{{ y }}]",
          "{% for i in [1] %}{% set y = 6 %}{% endfor %}[{{ y }}]{% for i in [] %}{% else %}{% set z = 7 "
          "%}{% endfor %}[{{ z }}]",
          "{% for i in [1, 2] %}{% if loop.first %}{% set z = 1 %}{% endif %}{{ z }}{% endfor %}",
          "{% set y = 1 %}{% macro m() %}{% set y = 2 %}{{ y }}{% endmacro %}{{ m() }}{{ y }}",
          "{% set loop = 5 %}{{ loop }}{% for i in [1] %}{{ loop.index }}{% endfor %}{{ loop }}",
          "{% for item in [1,2] %}{% set item = item * 10 %}{{ item }}{% endfor %}{% set a = [1] %}{% for a "
          "in a %}{{ a }}{% endfor %}{{ a }}",
          "{% macro m(x) %}{% for i in range(x) %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(n) m(3) "
          "%}<{{ n }}>{% endcall %}",
          "{% macro outer() %}{% macro inner() %}I{% endmacro %}{{ inner() }}O{% endmacro %}{{ outer() }}{{ "
          "inner is defined }}",
          "{{ messages|length }}{% set messages = [] %}{{ messages|length }}",
      },
      "scoping");
}

// Behaviours of jinja2 and Python that a straightforward interpreter gets wrong (found by differential
// fuzzing).
TEST(ChatTemplateLanguage, Quirks) {
  check(
      {
          // Constant folding reads constant slices through the sandbox's lenient getitem...
          "[{{ (1)[1:] }}][{{ (true)[:2] }}][{{ ((2.5)[1:]) is defined }}][{{ ({'k': 1})[1:] if false else "
          "'x' }}]",
          // ...and writes folded negative numbers without parentheses: (-3) ** 2 runs as -(3 ** 2).
          "{{ (-3) ** 2 }} {{ (-3) ** f }} {{ (1 - 4) ** i }} {{ -2 ** 2 }}",
          // Filters returning generators fail only when consumed, and are always truthy.
          "{{ [1]|map('nope') is defined }} {% if []|select %}T{% endif %} {{ 5|items is defined }}",
          // Iterating Markup yields plain strings; list arguments to % skip the argument count check.
          "{{ ('[x]'|e)|batch(2)|list }} {{ 'abc' % [] }} {{ '%s' % [1, 2] }}",
          "{{ 'x'|int(base='q') }} {{ '5'|int(base=none) }} {{ ' 7 '|int }} {{ 'nan'|int }} {{ '9 9'|int(3) "
          "}}",
          "{{ range(4) }} {{ range(1, 9, 2)[::-1] }} {{ range(3)|string|length }} {{ range(2) == range(2) }}",
          "{{ d[[1]] }}|{{ d[(1, [2])] }}|{{ 'héllo'[:, :-1] }}|{{ {'a': 1}.get((1, 2)) }}",
          "{{ '{a}-{b.c}'.format(a=1, b={'e': 2}) }} {{ [1, 2, 3]|batch(0)|list }} {{ {}|truncate(1, true, "
          "'', 0) }}",
      },
      "quirks");
}

TEST(ChatTemplateLanguage, QuirkErrors) {
  check(
      {
          "{{ x[::-1] }}",      // x = [[1, 2], [3, 4]]: fine
          "{{ i[::-1] }}",      // an int is not subscriptable at run time
          "{{ s[:missing] }}",  // undefined slice bound: TypeError at run time
          "{{ (1)[0%0:] }}",    // errors in slice bounds are not folded away
          "{{ missing|int }}",  // int(Undefined) raises UndefinedError
          "{{ missing|float }}",
          "{{ dict(missing) }}",
          "{{ 1e300 ** 2 }}",
          "{{ 'inf'|int }}",
          "{{ [[1]]|unique|list }}",
          "{{ [(1, [2])]|unique|list }}",
          "{{ (1, [2]) in d }}",
          "{{ 'x'|batch|list }}",  // argument errors are raised at the call, even by lazy filters
          "{{ [1, 3, 2]|sort(reverse=missing) }}",
          "{{ {'a': 1}|indent }}",
          "{{ f|truncate(2) }}",
          "{{ '%+%' % () }}",
          "{{ '%(a)%' % {'a': 1} }}",
      },
      "quirk errors");
}

// Cases python rejects must fail in tailor too (messages differ; both must be errors).
TEST(ChatTemplateLanguage, ErrorsMatchPython) {
  check(
      {
          "{{ missing.attr }}",
          "{{ missing + 1 }}",
          "{{ missing() }}",
          "{{ missing|tojson }}",
          "{{ missing[0] }}",
          "{{ 'a' + 1 }}",
          "{{ 1 + 'a' }}",
          "{{ [1] + (2,) }}",
          "{{ 'a' < 1 }}",
          "{{ none < 1 }}",
          "{{ 1 / 0 }}",
          "{{ 1 // 0 }}",
          "{{ 1 % 0 }}",
          "{{ 1.0 / 0 }}",
          "{% for x in none %}{% endfor %}",
          "{% for x in 5 %}{% endfor %}",
          "{% for a, b in [1] %}{% endfor %}",
          "{% for a, b in [(1, 2, 3)] %}{% endfor %}",
          "{{ raise_exception('no') }}",
          "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
          "{% macro m(a) %}{% endmacro %}{{ m(b=2) }}",
          "{{ 'x'|int(base='q') }}{{ '5'|int(base=none) }}{{ 5|int(base='q') }}",
          "{{ [1, 'a']|sort }}",
          "{{ {}|items|list + 1 }}",
          "{{ 5|items|list }}",
          "{{ 'a'.nope() }}",
          "{{ d[1:2] }}",
          "{{ range(1, 2, 0) }}",
          "{{ range(200000) }}",
          "{{ 'ab'.index('z') }}",
          "{{ [1].index(5) }}",
          "{{ 'abc'[::0] }}",
          "{{ ''.join([1]) }}",
          "{{ {'a': 1}|join(5) }}",
          "{{ 1|length }}",
          "{{ none|length }}",
          "{{ (1 for x in y) }}",
          "{% set ns = 1 %}{% set ns.x = 2 %}",
          "{{ 'x'|truncate(1) }}",
          "{% if %}{% endif %}",
          "{{ x|selectattr()|list }}",
          "{{ [1]|map|list }}",
          "{{ 'a' is nope_test }}",
          "{{ [1]|nope_filter }}",
          "{{ [1]|select('nope_test')|list }}",
          "{% for %}",
          "{{ 1 +}}",
          "{{ }}",
          "{% endif %}",
          "{% if true %}",
          "{{ 'unterminated }}",
          "{{ [1, 2) }}",
          "{% set 1 = 2 %}",
          "{% macro m(a=1, b) %}{% endmacro %}",
          "{% break %}",
          "{% include 'x' %}",
          "{% extends 'x' %}",
          "{{ a.0.1.2 }}",
          "{{ {[1]: 2} }}",
      },
      "errors");
}

}  // namespace
}  // namespace tailor::chat_template_test

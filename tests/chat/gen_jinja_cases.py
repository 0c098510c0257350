#!/usr/bin/env python3
"""Regenerates tests/chat/jinja_cases.json: Jinja language-feature cases with
the output (or error) of the reference - Jinja2 in the environment Hugging Face
renders chat templates with (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, raise_exception, strftime_now, HF's tojson).

Usage: python3 tests/chat/gen_jinja_cases.py > tests/chat/jinja_cases.json
The C++ test (jinja_cases_test.cc) renders each case with codey and compares.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Generation(Extension):
    # Hugging Face's {% generation %} tag: renders its body.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.Scope(body).set_lineno(lineno)


def make_env():
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime(2026, 1, 15, 10, 30).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


MSGS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"b": 1, "a": [1, 2.5, None, True]}}}]},
    {"role": "tool", "content": "{\"ok\": true}"},
]

# (name, template, variables). Grouped by feature; every case asserts an exact
# output or error.
CASES = [
    # --- text, comments, whitespace control, trim_blocks / lstrip_blocks
    ("text_only", "hello\nworld", {}),
    ("trailing_newline_dropped", "a\n", {}),
    ("two_trailing_newlines", "a\n\n", {}),
    ("crlf_normalized", "a\r\nb\rc", {}),
    ("comment", "a{# hidden #}b", {}),
    ("comment_trim", "a{# c #}\nb", {}),
    ("comment_lstrip", "a\n    {# c #}\nb", {}),
    ("comment_dash", "a  {#- c -#}  b", {}),
    ("block_trim_newline", "{% if true %}\nx\n{% endif %}\ny", {}),
    ("block_lstrip", "<\n    {% if true %}\n    x\n    {% endif %}\n>", {}),
    ("block_plus_no_lstrip", "<\n    {%+ if true %}x{% endif %}>", {}),
    ("block_plus_end_keeps_newline", "{% if true +%}\nx{% endif %}", {}),
    ("var_no_trim", "{{ 'a' }}\nb", {}),
    ("var_not_lstripped", "x\n    {{ 'a' }}", {}),
    ("dash_strip_both", "a  \n  {{- 'b' -}}  \n  c", {}),
    ("dash_block", "a\n  {%- if true -%}\n  b\n  {%- endif -%}\n  c", {}),
    ("lstrip_not_after_text", "ab  {% if true %}x{% endif %}", {}),
    ("lstrip_after_var_same_line", "{{ 'a' }}  {% if true %}x{% endif %}", {}),
    ("lstrip_tabs", "\t\t{% if true %}x{% endif %}", {}),
    ("raw_block", "{% raw %}{{ not rendered }}{% endraw %}", {}),
    ("raw_block_dash", "a {%- raw -%}  {{ x }}  {%- endraw -%} b", {}),
    ("unicode_whitespace_strip", "a\u3000 {{- 'b' }}", {}),
    ("nested_blocks_whitespace", "{% for i in [1,2] %}\n  {% if i == 1 %}\n    one\n  {% else %}\n    other\n  {% endif %}\n{% endfor %}", {}),

    # --- literals
    ("string_escapes", "{{ 'a\\tb\\nc\\\\d\\'e\\\"f' }}", {}),
    ("string_unicode_escapes", "{{ '\\u00e9\\x41\\U0001F600' }}", {}),
    ("string_unknown_escape_kept", "{{ 'a\\qb' }}", {}),
    ("string_adjacent_concat", "{{ 'a' \"b\" 'c' }}", {}),
    ("string_non_ascii", "{{ 'é → ✓' }}", {}),
    ("ints_floats", "{{ 1 }} {{ 1.0 }} {{ 1.5e3 }} {{ 1_000 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 2.5e-7 }}", {}),
    ("float_repr", "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789.123 }} {{ -0.0 }}", {}),
    ("list_literal", "{{ [1, 'a', none, true, 1.5] }}", {}),
    ("tuple_literal", "{{ (1, 2) }} {{ (1,) }} {{ () }}", {}),
    ("dict_literal", "{{ {'a': 1, 'b': [2], 3: 'c'} }}", {}),
    ("trailing_commas", "{{ [1, 2,] }} {{ {'a': 1,} }}", {}),
    ("bool_none_names", "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", {}),
    ("print_tuple", "{{ 1, 'a' }}", {}),
    ("repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'nl\\n'] }}", {}),
    ("repr_nested", "{{ {'k': {'n': [1, {'x': none}]}} }}", {}),

    # --- variables, attributes, subscripts, undefined
    ("undefined_prints_empty", "[{{ nope }}]", {}),
    ("undefined_attr_of_dict", "[{{ d.missing }}]", {"d": {"a": 1}}),
    ("undefined_attr_chain_errors", "{{ d.missing.deeper }}", {"d": {"a": 1}}),
    ("undefined_name_attr_errors", "{{ nope.x }}", {}),
    ("undefined_item_errors", "{{ nope['x'] }}", {}),
    ("none_attr_is_undefined", "[{{ n.x }}]", {"n": None}),
    ("attr_and_item", "{{ d.a }} {{ d['a'] }} {{ l[0] }} {{ l[-1] }} {{ l.0 }}", {"d": {"a": 1}, "l": [5, 6, 7]}),
    ("list_out_of_range_undefined", "[{{ l[10] }}]{{ l[10] is defined }}", {"l": [1]}),
    ("dict_method_beats_key", "{{ d.items is defined }} {{ d['items'] }}", {"d": {"items": "key"}}),
    ("string_index", "{{ s[0] }}{{ s[-1] }}{{ s[1] }}", {"s": "héllo"}),
    ("slices", "{{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[1:-1] }} {{ l[5:] }}", {"l": [1, 2, 3, 4]}),
    ("string_slices", "{{ s[1:3] }} {{ s[::-1] }} {{ s[-2:] }}", {"s": "héllo✓"}),
    ("slice_step_negative_bounds", "{{ l[3:0:-1] }} {{ l[-1:-4:-2] }}", {"l": [0, 1, 2, 3, 4]}),
    ("tuple_slice", "{{ (1, 2, 3)[1:] }}", {}),
    ("undefined_in_and_len", "{{ 'a' in nope }} {{ nope | length }} {{ nope | list }}", {}),
    ("undefined_iterate_empty", "{% for x in nope %}x{% else %}empty{% endfor %}", {}),
    ("undefined_equal", "{{ nope == nope2 }} {{ nope == none }}", {}),
    ("undefined_add_errors", "{{ nope + 1 }}", {}),
    ("undefined_concat_ok", "[{{ nope ~ 'x' }}]", {}),
    ("str_plus_undefined_errors", "{{ 'a' + nope }}", {}),
    ("undefined_compare_errors", "{{ nope < 1 }}", {}),
    ("undefined_call_errors", "{{ nope() }}", {}),
    ("param_not_provided_message", "{% macro m(a) %}{{ a.x }}{% endmacro %}{{ m() }}", {}),

    # --- operators
    ("arithmetic", "{{ 7 + 2 }} {{ 7 - 2 }} {{ 7 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }}", {}),
    ("negative_floordiv_mod", "{{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ -7.5 // 2 }} {{ 7.5 % -2 }}", {}),
    ("int_float_mix", "{{ 1 + 1.5 }} {{ 4 / 2 }} {{ 2 ** -1 }} {{ 2.0 ** 3 }} {{ true + 1 }}", {}),
    ("unary", "{{ -3 }} {{ +3 }} {{ -(-3) }} {{ - 2 ** 2 }} {{ -1 | abs }}", {}),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ 10 - 2 - 3 }} {{ 1 + 2 ~ 3 * 2 }}", {}),
    ("string_ops", "{{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ 'a' ~ 1 ~ none ~ true }}", {}),
    ("list_ops", "{{ [1] + [2] }} {{ [0] * 3 }} {{ (1,) + (2,) }}", {}),
    ("str_plus_int_error", "{{ 'a' + 1 }}", {}),
    ("int_plus_str_error", "{{ 1 + 'a' }}", {}),
    ("list_plus_tuple_error", "{{ [1] + (2,) }}", {}),
    ("division_by_zero", "{{ 1 / 0 }}", {}),
    ("modulo_by_zero", "{{ 1 % 0 }}", {}),
    ("printf_format", "{{ '%s-%d-%05.2f-%x-%r' % ('a', 42, 3.14159, 255, 'q') }}", {}),
    ("printf_single_and_dict", "{{ '%s!' % 'hi' }} {{ '%(a)s=%(b)d' % {'a': 'x', 'b': 3} }} {{ '100%%' % () }}", {}),
    ("comparisons", "{{ 1 < 2 }} {{ 2 <= 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 1 != 2 }}", {}),
    ("chained_comparison", "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1 == 1 }}", {}),
    ("compare_type_error", "{{ 1 < 'a' }}", {}),
    ("dict_equality", "{{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }} {{ [1, 2] == (1, 2) }} {{ [1, [2]] == [1, [2]] }}", {}),
    ("in_operator", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 'z' not in 'abc' }} {{ 3 not in [1] }}", {}),
    ("in_type_error", "{{ 1 in 'abc' }}", {}),
    ("in_none_error", "{{ 'a' in none }}", {}),
    ("logic_returns_operands", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ none or [] }} {{ not 0 }} {{ not 'a' }}", {}),
    ("not_precedence", "{{ not 1 == 2 }} {{ not x is defined }} {{ not none is none }}", {}),
    ("ternary", "{{ 'y' if true else 'n' }} {{ 'y' if 0 else 'n' }} [{{ 'y' if false }}] {{ 1 if false else 2 if true else 3 }}", {}),
    ("ternary_undefined_else_attr_errors", "{{ ('y' if false).x }}", {}),
    ("concat_precedence", "{{ 'a' ~ 1 + 2 }}", {}),
    ("filter_binds_tighter_than_plus", "{{ 'x' + ' a ' | trim + 'y' }}", {}),
    ("markup_plus_escapes", "{{ ('<b>' | safe) + '<i>' }} {{ '<i>' + ('<b>' | safe) }} {{ ('<b>' | safe) ~ '<i>' }}", {}),

    # --- if / for / loop
    ("if_elif_else", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %},{% endfor %}", {}),
    ("for_loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {}),
    ("for_prev_next", "{% for x in [1, 2, 3] %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}", {}),
    ("for_prev_undefined_defined_test", "{% for x in [1, 2] %}{{ loop.previtem is defined }}{% endfor %}", {}),
    ("for_cycle_changed", "{% for x in [1, 1, 2] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(x) }} {% endfor %}", {}),
    ("for_else", "{% for x in [] %}x{% else %}none{% endfor %}|{% for x in [1] %}x{% else %}none{% endfor %}", {}),
    ("for_filter", "{% for x in range(10) if x is odd %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}", {}),
    ("for_unpack", "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", {}),
    ("for_unpack_items_filter", "{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("for_dict_keys", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("for_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("for_nested_loop", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }}{% endfor %};{{ loop.index }} {% endfor %}", {}),
    ("for_scope_no_leak", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("for_target_no_leak", "{% for item in [1] %}{% endfor %}[{{ item }}]", {}),
    ("for_recursive", "{% for n in tree recursive %}<{{ n.name }}{% if n.children %}:{{ loop(n.children) }}{% endif %} d{{ loop.depth }}>{% endfor %}", {"tree": [{"name": "a", "children": [{"name": "b", "children": []}]}, {"name": "c"}]}),
    ("for_unpack_error", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("for_over_none_error", "{% for x in none %}{% endfor %}", {}),
    ("for_over_int_error", "{% for x in 5 %}{% endfor %}", {}),
    ("if_set_leaks", "{% if true %}{% set y = 2 %}{% endif %}{{ y }}", {}),
    ("loop_in_loop_filter_test", "{% for m in msgs if m.role != 'system' %}{{ loop.index }}{{ m.role[0] }}{% endfor %}", {"msgs": MSGS}),

    # --- set, namespace, with, block set
    ("set_simple", "{% set a = 1 %}{% set b, c = 2, 3 %}{{ a }}{{ b }}{{ c }}", {}),
    ("set_tuple_from_list", "{% set a, b = [1, 2] %}{{ a + b }}", {}),
    ("set_block", "{% set x %}\n  hello {{ 1 + 1 }}\n{% endset %}[{{ x }}]", {}),
    ("set_block_filter", "{% set x | upper | trim %}  hi  {% endset %}[{{ x }}]", {}),
    ("namespace", "{% set ns = namespace(n=0, items=[]) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }} {{ ns.items }}", {}),
    ("namespace_from_dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }}", {}),
    ("namespace_repr", "{{ namespace(a=1) }}", {}),
    ("set_attr_non_namespace_error", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("set_in_macro_local", "{% set x = 'outer' %}{% macro m() %}{% set x = 'inner' %}{{ x }}{% endmacro %}{{ m() }} {{ x }}", {}),

    # --- macros and call blocks
    ("macro_defaults", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', 'Hi') }} {{ greet('C', punct='?') }}", {}),
    ("macro_default_refs_param", "{% macro m(a, b=a * 2) %}{{ a }}-{{ b }}{% endmacro %}{{ m(3) }}", {}),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("macro_varargs_kwargs", "{% macro m(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}", {}),
    ("macro_too_many_args_error", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", {}),
    ("macro_unknown_kwarg_error", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=2) }}", {}),
    ("macro_sees_toplevel", "{% set g = 'G' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}", {}),
    ("macro_returns_string", "{% macro m() %}x{% endmacro %}{{ m() ~ m() }} {{ m() | length }} {{ m() is string }}", {}),
    ("macro_attrs", "{% macro m(a, b) %}{% endmacro %}{{ m.name }} {{ m.arguments }} {{ m is callable }}", {}),
    ("call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inside{% endcall %}", {}),
    ("call_block_args", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}[{{ x }}]{% endcall %}", {}),
    ("filter_block", "{% filter upper %}abc{{ 'd' }}{% endfilter %}", {}),
    ("filter_block_chain", "{% filter trim | replace('a', 'b') %}  aaa  {% endfilter %}", {}),

    # --- tests
    ("tests_types", "{{ 1 is number }}{{ 1.5 is float }}{{ 1 is integer }}{{ true is integer }}{{ true is boolean }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is sequence }}{{ 'a' is sequence }}{{ {} is sequence }}{{ 1 is iterable }}{{ 'a' is iterable }}", {}),
    ("tests_defined_none", "{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 0 is none }}{{ n is none }}{{ n is defined }}", {"n": None}),
    ("tests_true_false", "{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}", {}),
    ("tests_numbers", "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}", {}),
    ("tests_compare", "{{ 1 is eq 1 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is le 2 }}{{ 3 is gt 2 }}{{ 3 is ge 4 }}{{ 'a' is equalto 'a' }}{{ 2 is greaterthan 1 }}{{ 1 is lessthan 0 }}", {}),
    ("tests_in_sameas", "{{ 2 is in [1, 2] }}{{ none is sameas none }}{{ 'x' is in 'xyz' }}", {}),
    ("tests_lower_upper", "{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'aB' is lower }}{{ '12' is upper }}", {}),
    ("tests_callable_filter_test", "{{ range is callable }}{{ 'upper' is filter }}{{ 'nope' is filter }}{{ 'odd' is test }}", {}),
    ("test_is_not", "{{ 1 is not string }} {{ x is not defined }}", {}),
    ("undefined_tests", "{{ x is iterable }}{{ x is sequence }}{{ x is mapping }}{{ x is string }}{{ x is number }}", {}),
    ("test_on_attr_of_undefined_errors", "{{ x.y is defined }}", {}),

    # --- filters
    ("f_trim", "[{{ '  a b \\n' | trim }}][{{ 'xxaxx' | trim('x') }}][{{ none | trim }}]", {}),
    ("f_upper_lower_title_capitalize", "{{ 'hello wORLD' | upper }} {{ 'HeLLo' | lower }} {{ 'hello wORLD-foo (bar' | title }} {{ 'hELLO world' | capitalize }}", {}),
    ("f_length_count", "{{ 'héllo' | length }} {{ [1, 2] | length }} {{ {'a': 1} | count }}", {}),
    ("f_length_none_error", "{{ none | length }}", {}),
    ("f_join", "{{ [1, 2, 3] | join(', ') }} {{ ['a', 'b'] | join }} {{ users | join('/', attribute='name') }}", {"users": [{"name": "x"}, {"name": "y"}]}),
    ("f_replace", "{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'ab' | replace('', '-') }}", {}),
    ("f_default", "{{ x | default('d') }} {{ none | default('d') }} {{ '' | default('d', true) }} {{ 0 | d('z', boolean=true) }} {{ 'v' | default('d') }}", {}),
    ("f_first_last", "{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ 'abc' | first }} {{ 'abc' | last }} [{{ [] | first }}]", {}),
    ("f_list_string", "{{ 'ab' | list }} {{ {'a': 1} | list }} {{ 1 | string }} {{ [1, 'a'] | string }} {{ none | string }}", {}),
    ("f_items_dictsort", "{{ d | items | list }} {{ d | dictsort }} {{ d | dictsort(by='value') }} {{ d | dictsort(reverse=true) }}", {"d": {"b": 1, "a": 3, "C": 2}}),
    ("f_dictsort_case", "{{ d | dictsort(true) }}", {"d": {"b": 1, "a": 3, "C": 2}}),
    ("f_items_non_mapping_error", "{{ [1] | items | list }}", {}),
    ("f_map_attribute", "{{ users | map(attribute='name') | list }} {{ users | map(attribute='age', default=0) | list }}", {"users": [{"name": "x", "age": 3}, {"name": "y"}]}),
    ("f_map_filter", "{{ ['a', 'b'] | map('upper') | join }} {{ [' a', 'b '] | map('trim') | list }} {{ ['1', '2'] | map('int') | sum }}", {}),
    ("f_select_reject", "{{ range(10) | select('odd') | list }} {{ range(5) | reject('even') | list }} {{ [0, 1, '', 'a', none] | select | list }}", {}),
    ("f_select_with_arg", "{{ [1, 5, 10] | select('gt', 3) | list }} {{ ['a', 'b'] | reject('equalto', 'a') | list }}", {}),
    ("f_selectattr", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | rejectattr('role', 'in', ['user', 'tool']) | map(attribute='role') | join(',') }}", {"msgs": MSGS}),
    ("f_selectattr_truthy", "{{ msgs | selectattr('tool_calls') | list | length }} {{ msgs | selectattr('tool_calls', 'defined') | list | length }}", {"msgs": MSGS}),
    ("f_tojson", "{{ d | tojson }}", {"d": {"b": [1, 2.5, None, True, "é\"\n\t"], "a": {}, "c": [], "t": "\u2028<&>"}}),
    ("f_tojson_indent", "{{ d | tojson(indent=2) }}", {"d": {"b": [1, {"x": []}], "a": {"k": "v"}}}),
    ("f_tojson_indent_sort", "{{ d | tojson(indent=4, sort_keys=true) }}", {"d": {"b": 1, "a": {"d": 1, "c": 2}}}),
    ("f_tojson_separators_ascii", "{{ d | tojson(separators=(',', ':'), ensure_ascii=true) }}", {"d": {"k": "é😀", "n": [1, 2]}}),
    ("f_tojson_scalars", "{{ 'a' | tojson }} {{ 1 | tojson }} {{ 1.0 | tojson }} {{ none | tojson }} {{ true | tojson }} {{ (1, 2) | tojson }} {{ {1: 2} | tojson }}", {}),
    ("f_tojson_undefined_error", "{{ nope | tojson }}", {}),
    ("f_safe_escape", "{{ '<a>' | safe }} {{ '<a href=\"x\">&' | e }} {{ '<a>' | escape | escape }} {{ '<x>' | forceescape }}", {}),
    ("f_int_float", "{{ '42' | int }} {{ '42.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '0x1A' | int(base=16) }} {{ '1.5' | float }} {{ 'q' | float }} {{ 2 | float }}", {}),
    ("f_abs_round", "{{ -3 | abs }} {{ -2.5 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(method='floor') }} {{ 7 | round }}", {}),
    ("f_indent", "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(width='> ', blank=true) }}", {}),
    ("f_unique", "{{ [1, 2, 1, 3, 2] | unique | list }} {{ ['a', 'A', 'b'] | unique | list }} {{ ['a', 'A'] | unique(case_sensitive=true) | list }}", {}),
    ("f_sort", "{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} {{ [3, 1] | sort(reverse=true) }} {{ users | sort(attribute='age') | map(attribute='name') | join }}", {"users": [{"name": "x", "age": 3}, {"name": "y", "age": 1}]}),
    ("f_sort_multi_attr", "{{ users | sort(attribute='age,name') | map(attribute='name') | join }}", {"users": [{"name": "z", "age": 1}, {"name": "y", "age": 2}, {"name": "a", "age": 1}]}),
    ("f_reverse", "{{ 'abc' | reverse }} {{ [1, 2] | reverse | list }}", {}),
    ("f_min_max_sum", "{{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ ['b', 'A'] | min }} {{ [1, 2, 3] | sum }} {{ users | sum(attribute='age') }} {{ [1.5, 2] | sum(start=10) }}", {"users": [{"age": 3}, {"age": 4}]}),
    ("f_batch_slice", "{{ range(7) | batch(3) | list }} {{ range(7) | batch(3, 'x') | list }} {{ range(7) | slice(3) | list }}", {}),
    ("f_wordcount_center_truncate", "{{ 'one two, three-four' | wordcount }}|{{ 'ab' | center(7) }}|{{ 'hello world foo bar' | truncate(12) }}|{{ 'hello world foo bar' | truncate(12, true) }}|{{ 'short' | truncate(3, leeway=0) }}", {}),
    ("f_format_filter", "{{ '%s and %s' | format('a', 'b') }} {{ '%(x)s' | format(x=1) }}", {}),
    ("f_attr", "{{ 'ab' | attr('upper') is callable }} [{{ {'k': 1} | attr('k') }}]", {}),
    ("f_striptags_pprint", "{{ '<p>Hello <b>world</b></p>  &amp; more' | striptags }} {{ {'a': [1]} | pprint }}", {}),
    ("f_unknown_filter_error", "{{ 1 | nosuchfilter }}", {}),
    ("f_unknown_filter_in_if_ok", "{% if false %}{{ 1 | nosuchfilter }}{% endif %}ok", {}),
    ("f_urlencode_xmlattr_filesize", "{{ 'a b/c?' | urlencode }} {{ {'a': 'x y', 'b': 1} | urlencode }}{{ {'class': 'a', 'id': none} | xmlattr }} {{ 1500 | filesizeformat }} {{ 2048 | filesizeformat(true) }}", {}),

    # --- string / dict / list methods
    ("str_methods_case", "{{ 'aBc'.upper() }} {{ 'aBc'.lower() }} {{ 'hello world'.title() }} {{ \"they're 1st\".title() }} {{ 'hELLO'.capitalize() }} {{ 'aB'.swapcase() }}", {}),
    ("str_methods_strip", "[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ 'xxhixx'.strip('x') }}][{{ '\\n\\nhi\\n'.lstrip('\\n') }}]", {}),
    ("str_methods_startswith", "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith('lo') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.startswith('l', 2) }}", {}),
    ("str_methods_split", "{{ 'a,b,,c'.split(',') }} {{ '  a  b \\n c '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'a\\nb\\r\\nc'.splitlines() }}", {}),
    ("str_methods_split_think", "{% set c = '<think>\\nreason\\n</think>\\n\\nanswer' %}[{{ c.split('</think>')[-1].lstrip('\\n') }}][{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}]", {}),
    ("str_methods_find_count", "{{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'héllo'.find('l') }} {{ 'hello'.count('l') }} {{ 'hello'.index('e') }}", {}),
    ("str_method_index_error", "{{ 'hello'.index('z') }}", {}),
    ("str_methods_replace_join", "{{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '', 1) }} {{ ', '.join(['x', 'y']) }}", {}),
    ("str_methods_format", "{{ '{} and {}'.format('a', 'b') }} {{ '{1}{0}'.format('a', 'b') }} {{ '{x}!'.format(x=3) }} {{ '{:>5}|{:<4}|{:^6}|{:05.1f}|{:,}'.format('r', 'l', 'c', 3.14159, 1234567) }} {{ '{{lit}}'.format() }}", {}),
    ("str_methods_misc", "{{ 'abc'.isalpha() }}{{ '123'.isdigit() }}{{ ' '.isspace() }}{{ 'ab1'.isalnum() }}{{ 'Ab'.islower() }}{{ 'AB'.isupper() }} {{ 'ab'.center(6, '*') }} {{ '5'.zfill(3) }} {{ 'a=b=c'.partition('=') }} {{ 'x.py'.removesuffix('.py') }} {{ 'ab'.ljust(4, '.') }}|", {}),
    ("dict_methods", "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 5) }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}", {"d": {"a": 1, "b": 2}}),
    ("list_methods", "{{ [1, 2, 2].count(2) }} {{ [1, 2, 3].index(3) }}", {}),
    ("list_append_is_unsafe", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("dict_update_is_unsafe", "{% set d = {} %}{{ d.update({'a': 1}) }}", {}),
    ("unsafe_attr_is_undefined", "{{ [].append is defined }}", {}),
    ("method_on_undefined_errors", "{{ nope.strip() }}", {}),
    ("unknown_str_method_undefined", "[{{ 'a'.nosuch }}]", {}),
    ("unknown_str_method_call_errors", "{{ 'a'.nosuch() }}", {}),

    # --- globals
    ("range_forms", "{{ range(3) | list }} {{ range(1, 4) | list }} {{ range(10, 0, -3) | list }} {{ range(0) | list }}", {}),
    ("range_too_big", "{{ range(1000000) | length }}", {}),
    ("dict_global", "{{ dict(a=1, b=2) }} {{ dict({'x': 1}, y=2) }} {{ dict([('k', 'v')]) }}", {}),
    ("raise_exception", "{{ raise_exception('Custom failure: ' ~ 42) }}", {}),
    ("raise_exception_in_loop", "{% for m in msgs %}{% if m.role == 'tool' %}{{ raise_exception('no tools for ' + m.role) }}{% endif %}{{ m.role }}{% endfor %}", {"msgs": MSGS}),
    ("strftime_now", "{{ strftime_now('%Y-%m-%d %H:%M %B %b %d %A') }}", {}),
    ("cycler_joiner", "{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }} {% set j = joiner('|') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}", {}),

    # --- statements and syntax
    ("print_tag", "{% print 'a', 1 %}", {}),
    ("generation_tag", "a{% generation %}B{{ 1 }}{% endgeneration %}c", {}),
    ("block_tag", "{% block body %}x{{ 1 }}{% endblock %}", {}),
    ("syntax_error_unclosed_if", "{% if true %}x", {}),
    ("syntax_error_unknown_tag", "{% frobnicate %}", {}),
    ("syntax_error_bad_expr", "{{ 1 + }}", {}),
    ("syntax_error_unexpected_end_tag", "{% endif %}", {}),
    ("syntax_error_unterminated_string", "{{ 'abc }}", {}),
    ("syntax_error_unbalanced", "{{ (1 }}", {}),

    # --- found by differential fuzzing against Jinja2
    ("scope_store_first_hides_context", "{% for q in [1] %}[{{ s }}]{% endfor %}{% set s = 2 %}{{ s }}", {"s": "ctx"}),
    ("scope_load_first_reads_context", "[{{ s }}]{% for q in [1] %}[{{ s }}]{% endfor %}{% set s = 2 %}{{ s }}", {"s": "ctx"}),
    ("scope_conditional_store_reads_context", "{% for q in [1] %}[{{ s }}]{% endfor %}{% if false %}{% set s = 2 %}{% endif %}", {"s": "ctx"}),
    ("scope_loop_body_store_first", "{% for i in [1, 2] %}[{{ c }}]{% set c = i %}{% endfor %}", {"c": "ctx"}),
    ("scope_macro_store_first", "{% macro m() %}[{{ v }}]{% set v = 1 %}{{ v }}{% endmacro %}{{ m() }}", {"v": "ctx"}),
    ("map_select_on_falsy_is_empty", "{{ none | map(attribute='x') | list }} {{ 0 | select('odd') | list }} {{ false | selectattr('a') | list }}", {}),
    ("indent_non_string_error", "{{ 2.5 | indent }}", {}),
    ("indent_list_error", "{{ [1] | indent }}", {}),
    ("printf_list_arg_unused_ok", "{{ 'abc' % [] }} {{ '%s' % [1, 2] }}", {}),
    ("printf_not_all_converted", "{{ 'abc' % 5 }}", {}),
    ("slice_of_bool_error", "{{ b[::-1] }}", {"b": True}),
    ("slice_of_undefined_error", "{{ nope[1:] }}", {}),
    ("test_extra_arg_error", "{{ 1 is odd 2 }}", {}),
    ("int_filter_undefined_error", "{{ nope | int }}", {}),
    ("round_undefined_error", "{{ nope | round }}", {}),
    ("abs_undefined_error", "{{ nope | abs }}", {}),
    ("in_string_undefined_error", "{{ nope in 'abc' }}", {}),
    ("last_not_reversible", "{{ 5 | last }}", {}),
    ("reverse_not_iterable", "{{ true | reverse }}", {}),
    ("lower_test_uses_str", "{{ [1, 'a'] is lower }} {{ none is upper }}", {}),
    ("min_empty_message", "{{ [] | min is defined }}", {}),
    ("mul_sequence_by_str_error", "{{ 'a' * 'b' }}", {}),
    ("markup_iterates_as_str", "{{ ('<a>' | e | list)[0] + '<' }}", {}),

    # --- chat-template idioms
    ("chat_system_extract", "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% set loop_messages = messages[1:] %}{% else %}{% set loop_messages = messages %}{% endif %}[{{ sys }}]{% for m in loop_messages %}<{{ m.role }}>{% endfor %}", {"messages": MSGS}),
    ("chat_ns_last_query", "{% set ns = namespace(idx=messages | length - 1) %}{% for m in messages[::-1] %}{% set i = (messages | length - 1) - loop.index0 %}{% if m.role == 'user' %}{% set ns.idx = i %}{% endif %}{% endfor %}{{ ns.idx }}", {"messages": MSGS}),
    ("chat_tool_call_args", "{% for m in messages if m.tool_calls %}{% for tc in m.tool_calls %}{% set tc = tc.function %}{{ tc.name }}({{ tc.arguments | tojson }}){% for k, v in tc.arguments | items %} {{ k }}={{ v }}{% endfor %}{% endfor %}{% endfor %}", {"messages": MSGS}),
    ("chat_content_string_or_list", "{% for m in msgs %}{% if m.content is string %}{{ m.content }}{% else %}{% for p in m.content %}{{ p.text }}{% endfor %}{% endif %};{% endfor %}", {"msgs": [{"content": "s"}, {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}),
    ("chat_dict_print", "{{ messages[2].tool_calls[0].function.arguments }}", {"messages": MSGS}),
    ("chat_message_equality", "{% set users = messages | selectattr('role', 'equalto', 'user') | list %}{% for m in messages %}{{ m == users[-1] }}{% endfor %}", {"messages": MSGS}),
    ("chat_tojson_tool_call_out_slice", "{% set out = messages[2].tool_calls[0].function | tojson %}{{ out[:-1] }}, \"id\": 1}", {"messages": MSGS}),
    ("chat_bos_eos", "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}", {"messages": MSGS[:2], "bos_token": "<s>", "eos_token": "</s>"}),
]


def main():
    env = make_env()
    out = []
    for name, source, variables in CASES:
        case = {"name": name, "template": source, "vars": variables}
        try:
            case["expected"] = env.from_string(source).render(**variables)
        except Exception as e:  # the reference's failure is the expected one
            case["error"] = f"{type(e).__name__}: {e}"
        out.append(case)
    names = [c["name"] for c in out]
    assert len(names) == len(set(names)), "duplicate case names"
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""Rendering outbox messages: each template once per language, then the values put in.

A campaign or a flood sends the same few templates many times with different values
(references, links, addresses). Django's template engine costs more per message than the
rest of a send to the local mail relay; so a template whose output is nothing but its text,
its translations and its context values put in as they are (no conditions, loops or
filters: `_substitutable`) is rendered once per language and set of context names, with
a marker in place of each value, and every message then only fills in its values, escaped
where the template escaped the marker. Any other template, or a context with a value that
is not a string, is rendered in full as before.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.template import Template as EngineTemplate
from django.template.base import FilterExpression, Node, TextNode, VariableNode
from django.template.defaulttags import AutoEscapeControlNode, CommentNode, LoadNode
from django.template.loader import get_template, render_to_string
from django.template.loader_tags import BlockNode, ExtendsNode
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.utils.html import conditional_escape
from django.utils.translation import get_language

# A value's marker: control characters no template text holds, around its name, and an
# ampersand that autoescaping turns into `&amp;`, which tells an escaped place from a raw one.
_MARKER = "\x1e{}&\x1f"
_FILLED = re.compile("\x1e([A-Za-z_][A-Za-z0-9_]*)(&amp;|&)\x1f")


def render_message(template_name: str, context: Mapping[str, Any]) -> str:
    """`render_to_string(template_name, context)` in the active language, the same text."""
    if not context or not all(isinstance(value, str) for value in context.values()):
        return render_to_string(template_name, context)
    skeleton = _skeleton(template_name, get_language(), frozenset(context))
    if skeleton is None:
        return render_to_string(template_name, context)

    def fill(match: re.Match[str]) -> str:
        value = context[match.group(1)]
        return str(conditional_escape(value)) if match.group(2) == "&amp;" else value

    return _FILLED.sub(fill, skeleton)


@functools.lru_cache(maxsize=512)
def _skeleton(template_name: str, language: str | None, names: frozenset[str]) -> str | None:
    """The template rendered with a marker for each context value; None if it is not
    substitutable or a marker did not come out whole."""
    template = get_template(template_name)
    if not _substitutable(_nodes(template.template)):  # type: ignore[attr-defined]
        return None
    skeleton = template.render({name: _MARKER.format(name) for name in names})
    # Every marker left in the text must be one `fill` replaces: nothing cut or changed one.
    if skeleton.count("\x1e") != len(_FILLED.findall(skeleton)):
        return None
    return skeleton


def _nodes(template: EngineTemplate) -> list[Node]:
    return list(template.nodelist)


def _substitutable(nodes: Iterable[Node]) -> bool:
    """True if these nodes (and any template they extend) only print text, translations
    and plain context values: their output never depends on what a value is."""
    for node in nodes:
        if isinstance(node, TextNode | LoadNode | CommentNode):
            continue
        if isinstance(node, VariableNode):
            expression = node.filter_expression
            variable = expression.var
            if expression.filters or getattr(variable, "lookups", None) is None:
                return False
            if len(variable.lookups) != 1:
                return False
        elif isinstance(node, TranslateNode):
            expression = node.filter_expression
            if (
                expression.filters
                or node.asvar
                or node.message_context
                or getattr(expression.var, "literal", None) is None
            ):
                return False
        elif isinstance(node, BlockTranslateNode):
            if (
                node.extra_context
                or node.plural
                or node.counter is not None
                or node.asvar
                or node.message_context
            ):
                return False
        elif isinstance(node, BlockNode | AutoEscapeControlNode):
            if not _substitutable(node.nodelist):
                return False
        elif isinstance(node, ExtendsNode):
            parent = node.parent_name
            if not isinstance(parent, FilterExpression) or parent.filters:
                return False
            if not isinstance(parent.var, str) or not _substitutable(node.nodelist):
                return False
            if not _substitutable(_nodes(get_template(parent.var).template)):  # type: ignore[attr-defined]
                return False
        else:
            return False
    return True

"""Render the Helm chart with a small subset of Go templates, because no helm binary
can be installed where these checks run.

This is not Helm. It implements the parts of text/template and of Helm's functions
that charts/tenant-operator uses: trim markers, comments, variables, `if`/`else if`/
`else`, `with`, `range`, `define`/`include`, pipelines, and the functions listed in
FUNCTIONS. A template that uses anything else raises TemplateError, so the checks fail
instead of rendering something Helm would not. Values are merged as `helm --values`
merges them: maps key by key, everything else replaced.
"""

import copy
import json
import re
from pathlib import Path

import yaml

ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<number>-?\d+)
      | (?P<declare>:=)
      | (?P<pipe>\|)
      | (?P<open>\()
      | (?P<close>\))
      | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
      | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


class TemplateError(Exception):
    """A template uses syntax this renderer lacks, or a template calls `fail`."""


def truthy(value):
    """Return Go's truth of a value: false, 0, nil and empty strings, lists and maps are false."""
    return value not in (None, False, 0, "") and not (
        isinstance(value, (list, dict)) and not value
    )


def to_text(value):
    """Format a value as Go's text/template prints it, with Helm's empty missing values."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def go_quote(value):
    """Quote a value as Sprig's `quote` does (Go's %q)."""
    return json.dumps(to_text(value), ensure_ascii=False)


def go_printf(template, *args):
    """Format with the Go verbs %s, %d and %v."""
    return re.sub(r"%[sdv]", "{}", template).format(*(to_text(arg) for arg in args))


def to_yaml(value):
    """Encode a value as Helm's toYaml does: block style, sorted keys, no final newline."""
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def indent(width, text):
    return "\n".join(" " * width + line for line in to_text(text).split("\n"))


def fail(message):
    raise TemplateError(f"fail: {message}")


def required(message, value):
    if not truthy(value):
        raise TemplateError(f"required: {message}")
    return value


FUNCTIONS = {
    "and": lambda *args: next((arg for arg in args if not truthy(arg)), args[-1]),
    "contains": lambda substring, text: substring in to_text(text),
    "default": lambda fallback, value=None: value if truthy(value) else fallback,
    "eq": lambda left, right: left == right,
    "fail": fail,
    "indent": indent,
    "int": lambda value: int(value or 0),
    "ne": lambda left, right: left != right,
    "nindent": lambda width, text: "\n" + indent(width, text),
    "not": lambda value: not truthy(value),
    "or": lambda *args: next((arg for arg in args if truthy(arg)), args[-1]),
    "printf": go_printf,
    "quote": go_quote,
    "replace": lambda old, new, text: to_text(text).replace(old, new),
    "required": required,
    "ternary": lambda if_true, if_false, condition: if_true if truthy(condition) else if_false,
    "toYaml": to_yaml,
    "trimSuffix": lambda suffix, text: to_text(text).removesuffix(suffix),
    "trunc": lambda length, text: to_text(text)[:length],
}


def tokenize(source):
    """Split template source into ("text", str) and ("action", str) items, applying trim markers."""
    items = []
    position = 0
    for match in ACTION.finditer(source):
        text = source[position:match.start()]
        if match.group(1):
            text = text.rstrip()
        items.append(["text", text])
        items.append(["action", match.group(2).strip(), bool(match.group(3))])
        position = match.end()
    items.append(["text", source[position:]])

    for index, item in enumerate(items):
        if item[0] == "action" and item[2] and index + 1 < len(items):
            items[index + 1][1] = items[index + 1][1].lstrip()
    return [(item[0], item[1]) for item in items]


def parse(items, defines):
    """Build a node list from tokenized items, storing `define` blocks in defines."""
    nodes, end = parse_block(items, 0, defines, closers=())
    if end != len(items):
        raise TemplateError(f"unexpected {items[end][1]!r}")
    return nodes


def parse_block(items, index, defines, closers):
    nodes = []
    while index < len(items):
        kind, text = items[index]
        if kind == "text":
            nodes.append(("text", text))
            index += 1
            continue
        keyword = text.split(None, 1)[0] if text else ""
        if text.startswith("/*"):
            index += 1
        elif keyword in closers or (keyword == "else" and "else" in closers):
            return nodes, index
        elif keyword in ("if", "with", "range"):
            node, index = parse_conditional(items, index, defines, keyword, text[len(keyword):])
            nodes.append(node)
        elif keyword == "define":
            name = json.loads(text[len("define"):].strip())
            body, index = parse_block(items, index + 1, defines, closers=("end",))
            defines[name] = body
            index += 1
        else:
            nodes.append(("action", text))
            index += 1
    return nodes, index


def parse_conditional(items, index, defines, keyword, expression):
    body, index = parse_block(items, index + 1, defines, closers=("end", "else"))
    otherwise = []
    text = items[index][1]
    if text.startswith("else if "):
        nested, index = parse_conditional(items, index, defines, "if", text[len("else if"):])
        return (keyword, expression.strip(), body, [nested]), index
    if text == "else":
        otherwise, index = parse_block(items, index + 1, defines, closers=("end",))
    if items[index][1] != "end":
        raise TemplateError(f"{keyword} without end")
    return (keyword, expression.strip(), body, otherwise), index + 1


class Renderer:
    """Render chart templates for one set of values."""

    def __init__(self, chart_dir, values, release_name="tenant-operator", namespace="tenant-operator"):
        chart_dir = Path(chart_dir)
        chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text(encoding="utf-8"))
        self.root = {
            "Values": values,
            "Chart": {
                "Name": chart["name"],
                "Version": chart["version"],
                "AppVersion": chart.get("appVersion", ""),
            },
            "Release": {"Name": release_name, "Namespace": namespace, "Service": "Helm"},
        }
        self.defines = {}
        self.templates = {}
        for path in sorted((chart_dir / "templates").iterdir()):
            nodes = parse(tokenize(path.read_text(encoding="utf-8")), self.defines)
            if not path.name.startswith("_"):
                self.templates[path.name] = nodes

    def render_all(self):
        """Return {template file name: rendered text}."""
        return {name: self.render(nodes, self.root, {"$": self.root}) for name, nodes in self.templates.items()}

    def render(self, nodes, dot, variables):
        output = []
        for node in nodes:
            kind = node[0]
            if kind == "text":
                output.append(node[1])
            elif kind == "action":
                value = self.run_action(node[1], dot, variables)
                if value is not None or not node[1].lstrip().startswith("$"):
                    output.append(to_text(value))
            else:
                output.append(self.render_control(node, dot, variables))
        return "".join(output)

    def render_control(self, node, dot, variables):
        kind, expression, body, otherwise = node
        value = self.evaluate(expression, dot, variables)
        if kind == "if":
            chosen = body if truthy(value) else otherwise
            return self.render(chosen, dot, variables)
        if kind == "with":
            if truthy(value):
                return self.render(body, value, variables)
            return self.render(otherwise, dot, variables)
        if not truthy(value):
            return self.render(otherwise, dot, variables)
        elements = value.values() if isinstance(value, dict) else value
        return "".join(self.render(body, element, variables) for element in elements)

    def run_action(self, text, dot, variables):
        declaration = re.match(r"^(\$[A-Za-z0-9_]+)\s*:?=\s*(.*)$", text, re.DOTALL)
        if declaration:
            variables[declaration.group(1)] = self.evaluate(declaration.group(2), dot, variables)
            return None
        return self.evaluate(text, dot, variables)

    def evaluate(self, expression, dot, variables):
        tokens = lex(expression)
        value, position = self.pipeline(tokens, 0, dot, variables)
        if position != len(tokens):
            raise TemplateError(f"cannot parse {expression!r}")
        return value

    def pipeline(self, tokens, position, dot, variables):
        value, position = self.command(tokens, position, dot, variables, piped=())
        while position < len(tokens) and tokens[position][0] == "pipe":
            value, position = self.command(tokens, position + 1, dot, variables, piped=(value,))
        return value, position

    def command(self, tokens, position, dot, variables, piped):
        kind, text = tokens[position]
        if kind == "name" and text not in ("true", "false", "nil"):
            name = text
            position += 1
            args = []
            while position < len(tokens) and tokens[position][0] not in ("pipe", "close"):
                arg, position = self.operand(tokens, position, dot, variables)
                args.append(arg)
            return self.call(name, args + list(piped), dot), position
        value, position = self.operand(tokens, position, dot, variables)
        if piped:
            raise TemplateError(f"cannot pipe into the value {text!r}")
        return value, position

    def call(self, name, args, dot):
        if name == "include":
            template_name, data = args
            if template_name not in self.defines:
                raise TemplateError(f"no template {template_name!r}")
            return self.render(self.defines[template_name], data, {"$": self.root})
        if name not in FUNCTIONS:
            raise TemplateError(f"function {name!r} is not implemented by this renderer")
        return FUNCTIONS[name](*args)

    def operand(self, tokens, position, dot, variables):
        kind, text = tokens[position]
        if kind == "string":
            return json.loads(text), position + 1
        if kind == "raw":
            return text[1:-1], position + 1
        if kind == "number":
            return int(text), position + 1
        if kind == "name":
            return {"true": True, "false": False, "nil": None}[text], position + 1
        if kind == "field":
            return lookup(dot, text), position + 1
        if kind == "variable":
            name, _, path = text.partition(".")
            return lookup(variables[name], "." + path if path else "."), position + 1
        if kind == "open":
            value, position = self.pipeline(tokens, position + 1, dot, variables)
            if tokens[position][0] != "close":
                raise TemplateError("unbalanced parentheses")
            return value, position + 1
        raise TemplateError(f"unexpected {text!r}")


def lex(expression):
    tokens = []
    position = 0
    expression = expression.strip()
    while position < len(expression):
        match = TOKEN.match(expression, position)
        if not match or match.end() == position:
            raise TemplateError(f"cannot read {expression[position:]!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
        while position < len(expression) and expression[position].isspace():
            position += 1
    return tokens


def lookup(value, path):
    """Follow a field path such as .Values.image.tag; a missing key gives None."""
    for part in path.strip(".").split("."):
        if not part:
            continue
        value = value.get(part) if isinstance(value, dict) else None
    return value


def merge_values(base, override):
    """Merge override into a copy of base as Helm merges --values files."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def render_chart(chart_dir, overrides=None, **release):
    """Render every template with the chart's values.yaml merged with overrides."""
    chart_dir = Path(chart_dir)
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text(encoding="utf-8"))
    values = merge_values(defaults, overrides)
    return Renderer(chart_dir, values, **release).render_all()

"""`${...}` expressions in spec values: small arithmetic over variables, never `eval`.

A string that is exactly `${expr}` becomes the expression's value (a number,
list, string or boolean); a string with `${expr}` inside other text gets the
value written into it (`"conv${stage}"`). The expression is parsed with
Python's `ast` and only a whitelist of node kinds is interpreted: literals,
names, + - * / // %, comparisons, and/or/not, `a if c else b`, indexing and
list literals. There are no calls, attributes or imports, so nothing in a spec
can run code.
"""

from __future__ import annotations

import ast
import math
import operator
import re

from zoo.source import MAX_INTEGER, Mapping, Sequence, SpecError, plain, suggest

MAX_EXPRESSION_LENGTH = 500
MAX_STRING_LENGTH = 10_000

_WHOLE = re.compile(r"^\$\{([^{}]*)\}$")
_PART = re.compile(r"\$\{([^{}]*)\}")

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}


class ExpressionError(ValueError):
    """What is wrong with an expression; the caller adds the location."""


def substitute(value, variables: dict):
    """Evaluate every `${...}` in a located value (recursively through lists and mappings).

    A problem becomes a SpecError located at the offending value.
    """
    if isinstance(value, Mapping):
        result = Mapping(location=value.location, path=value.path)
        result.key_locations = value.key_locations
        for key, item in value.items():
            result.set(key, _substitute_item(value, key, item, variables),
                       value.value_locations.get(key), value.key_locations.get(key))
        return result
    if isinstance(value, Sequence):
        result = Sequence(location=value.location, path=value.path)
        for index, item in enumerate(value):
            result.append_located(_substitute_item(value, index, item, variables),
                                  value.item_locations[index])
        return result
    return value


def variables_in_order(mapping: Mapping | None) -> dict:
    """`model.vars` as values: each variable's `${...}` sees the variables above it
    (`{base: 16, width: "${base * 2}"}` gives width 32), so one change flows to the rest."""
    variables = {}
    names = list(mapping or {})
    for index, (key, item) in enumerate((mapping or {}).items()):
        try:
            variables[key] = plain(_substitute_item(mapping, key, item, variables))
        except SpecError as error:
            below = [name for name in names[index:] if re.search(rf"\b{re.escape(name)}\b",
                                                                  str(item))]
            if not below:
                raise
            why = ("a variable cannot use itself" if below[0] == key else f"'{below[0]}' is "
                   "defined below it: a variable can use only the ones above it")
            raise SpecError(error.location, error.path, f"{error.message}; {why}") from None
    return variables


def _substitute_item(container, key, item, variables):
    if isinstance(item, str) and "${" in item:
        try:
            return evaluate_text(item, variables)
        except ExpressionError as exc:
            raise container.error(key, str(exc)) from None
    return substitute(item, variables)


def evaluate_text(text: str, variables: dict):
    whole = _WHOLE.match(text)
    if whole:
        return evaluate(whole.group(1), variables)
    rendered = _PART.sub(lambda m: _render(evaluate(m.group(1), variables)), text)
    if "${" in rendered:
        raise ExpressionError(f"unclosed or nested '${{' in '{text}'; write ${{name}}")
    return rendered


def _render(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def evaluate(expression: str, variables: dict):
    """The value of one expression (the text between `${` and `}`)."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExpressionError(f"'${{{expression}}}' is not a valid expression; expressions use "
                              "names, numbers, + - * / // %, comparisons, and/or/not, "
                              "'a if c else b' and x[i]") from None
    try:
        return _Evaluator(variables).visit(tree.body)
    except RecursionError:
        raise ExpressionError(f"'${{{expression}}}' is nested too deeply") from None


class _Evaluator:
    def __init__(self, variables: dict):
        self.variables = variables

    def visit(self, node):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExpressionError(f"'{ast.unparse(node)}' is not allowed in an expression: only "
                                  "names, literals, arithmetic, comparisons, and/or/not, "
                                  "'a if c else b' and indexing are (no calls or attributes)")
        return method(node)

    def visit_Constant(self, node):
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            raise ExpressionError(f"the literal {node.value!r} is not allowed")
        return node.value

    def visit_Name(self, node):
        if node.id in ("true", "false", "null"):  # YAML spellings, for symmetry with the file
            return {"true": True, "false": False, "null": None}[node.id]
        if node.id not in self.variables:
            known = sorted(self.variables)
            raise ExpressionError(f"undefined variable '{node.id}'{suggest(node.id, known)}; "
                                  f"defined here: {', '.join(known) or 'none'}")
        return self.variables[node.id]

    def visit_List(self, node):
        return [self.visit(item) for item in node.elts]

    visit_Tuple = visit_List

    def visit_UnaryOp(self, node):
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(node.op, (ast.USub, ast.UAdd)) and _is_number(operand):
            return -operand if isinstance(node.op, ast.USub) else operand
        raise ExpressionError(f"cannot apply '{ast.unparse(node)}' to {operand!r}")

    def visit_BinOp(self, node):
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ExpressionError(f"'{ast.unparse(node)}' is not allowed in an expression: the "
                                  "operators are + - * / // %")
        left, right = self.visit(node.left), self.visit(node.right)
        both_numbers = _is_number(left) and _is_number(right)
        joins_text = (isinstance(node.op, ast.Add) and isinstance(left, str)
                      and isinstance(right, str))
        if not (both_numbers or joins_text):
            raise ExpressionError(f"cannot compute '{ast.unparse(node)}' with {left!r} and "
                                  f"{right!r}: arithmetic takes numbers (and + joins strings)")
        try:
            result = op(left, right)
        except (ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(f"'{ast.unparse(node)}': {exc}") from None
        if isinstance(node.op, ast.Div) and isinstance(result, float) and result.is_integer() \
                and isinstance(left, int) and isinstance(right, int):
            result = int(result)  # 256 / 2 is a layer width, not 128.0
        if isinstance(result, str) and len(result) > MAX_STRING_LENGTH:
            raise ExpressionError(f"the string is longer than {MAX_STRING_LENGTH:,} characters")
        if isinstance(result, int) and abs(result) > MAX_INTEGER:
            raise ExpressionError(f"'{ast.unparse(node)}' is larger than any size, count or seed "
                                  f"a spec can use (at most {MAX_INTEGER:,})")
        if isinstance(result, float) and not math.isfinite(result):
            raise ExpressionError(f"'{ast.unparse(node)}' is not a finite number")
        return result

    def visit_BoolOp(self, node):
        values = (self.visit(value) for value in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)

    def visit_Compare(self, node):
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.visit(comparator)
            if type(op) not in _COMPARE:
                raise ExpressionError(f"the comparison in '{ast.unparse(node)}' is not allowed")
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                raise ExpressionError(f"cannot compare {left!r} with {right!r}") from None
            left = right
        return True

    def visit_IfExp(self, node):
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Slice(self, node):
        bounds = [None if part is None else self.visit(part)
                  for part in (node.lower, node.upper, node.step)]
        if not all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in bounds) \
                or bounds[2] == 0:
            raise ExpressionError(f"'{ast.unparse(node)}': slice bounds must be integers "
                                  "(and the step not 0)")
        return slice(*bounds)

    def visit_Subscript(self, node):
        container, index = self.visit(node.value), self.visit(node.slice)
        if isinstance(index, slice) and isinstance(container, (list, str)):
            return container[index]  # e.g. widths[::-1] mirrors an encoder into a decoder
        if not isinstance(container, (list, str)) or isinstance(index, bool) \
                or not isinstance(index, int):
            raise ExpressionError(f"'{ast.unparse(node)}': only a list or string can be indexed, "
                                  "by an integer or a slice")
        if not -len(container) <= index < len(container):
            raise ExpressionError(f"'{ast.unparse(node)}': index {index} is out of range for a "
                                  f"list of {len(container)}")
        return container[index]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

"""The restricted evaluator of ``metadata_condition`` (reference 3.3).

A condition is operator-supplied text, so it must never reach Python's ``eval``: the text is
parsed with :func:`ast.parse` and every node is checked against a whitelist while it is
turned into a tree of small evaluator functions. Anything the whitelist does not name is
rejected when the configuration is loaded, before any image is looked at.
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["Condition", "ConditionError", "ConditionEvalError", "compile_condition"]

# Fields of glancesync.image.Image a condition may read (reference 1.4).
IMAGE_FIELDS = frozenset(
    ["name", "id", "region", "owner", "is_public", "checksum", "size", "status", "user_properties"]
)
# Deeper trees are refused: the checker and the evaluator recurse once per level.
MAX_DEPTH = 100

_LITERAL_TYPES = (str, int, float, complex, bool, type(None))

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}

_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.MatMult: "@",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Invert: "~",
    ast.UAdd: "+",
    ast.USub: "-",
}

# Readable names of constructs that are always rejected, for the error message.
_CONSTRUCT_NAMES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.IfExp: "conditional expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.NamedExpr: "assignment expression (:=)",
    ast.Starred: "starred expression",
    ast.Slice: "slice",
    ast.Dict: "dict display",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_Env = tuple[Any, frozenset]
_Evaluator = Callable[[_Env], Any]


class ConditionError(Exception):
    """The text is not a valid condition: a syntax error or a construct outside the whitelist."""


class ConditionEvalError(Exception):
    """Evaluating a valid condition failed for one image (reference 3.3: the condition is
    then false)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class Condition:
    """A checked condition, ready to be evaluated against many images.

    ``text`` is the canonical spelling (one line, comments gone); ``source`` is the text as
    it was written.
    """

    def __init__(self, source: str, text: str, evaluator: _Evaluator):
        self.source = source
        self.text = text
        self._evaluator = evaluator

    def evaluate(self, image: Any, metadata_set: frozenset[str]) -> bool:
        """The truth value of the condition for ``image``; raises ConditionEvalError only."""
        try:
            return bool(self._evaluator((image, frozenset(metadata_set))))
        except ConditionEvalError:
            raise
        except Exception as exc:  # every runtime failure is reference 3.3
            raise ConditionEvalError(_reason(exc)) from exc

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def compile_condition(text: str) -> Condition:
    """Parse and check ``text``; raise ConditionError naming the first rejected construct."""
    source = normalise(text)
    if not source.strip():
        raise ConditionError("the condition is empty")
    if source.endswith("\\"):
        raise ConditionError("syntax error: a line continuation ends the condition")
    tree = _parse(f"(\n{source}\n)")
    if _only_comments(tree):
        raise ConditionError("the condition is empty")
    evaluator = _build(tree.body, 0)
    return Condition(text, _unparse(tree, source), evaluator)


def normalise(text: str) -> str:
    """The text as Python reads it between a line ``(`` and a line ``)`` (reference 3.3, 3.3).

    Newlines are kept, so a ``#`` comment ends at its line and a string may hold ``#``;
    inside the parentheses line breaks join lines by themselves. Only line ends are
    normalised, and blanks after a line-end backslash dropped (an editor may leave them).
    """
    text = re.sub(r"\r\n|\r", "\n", text)
    return re.sub(r"\\[ \t]+\n", "\\\n", text).strip()


def _only_comments(tree: ast.Expression) -> bool:
    """Only comments leave the empty tuple of our own parentheses: no condition."""
    body = tree.body
    return (
        isinstance(body, ast.Tuple) and not body.elts and (body.lineno, body.col_offset) == (1, 0)
    )


def _parse(source: str) -> ast.Expression:
    """ast.parse, with every failure it can produce turned into a ConditionError."""
    try:
        with warnings.catch_warnings():
            # Invalid escape sequences and `is` with a literal only warn; they are harmless.
            warnings.simplefilter("ignore")
            return ast.parse(source, mode="eval")
    except SyntaxError as exc:  # includes IndentationError
        raise ConditionError(f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ConditionError("the expression is nested too deeply") from None
    except ValueError as exc:
        raise ConditionError(f"syntax error: {exc}") from None


def _unparse(tree: ast.Expression, fallback: str) -> str:
    try:
        return ast.unparse(tree)
    except (ValueError, RecursionError):
        return fallback


def _reason(exc: Exception) -> str:
    """A one-line reason for the reference 3.3 warning."""
    if isinstance(exc, KeyError):
        return f"key {exc.args[0]!r} not found" if exc.args else "key not found"
    if isinstance(exc, IndexError):
        return f"index out of range ({exc})"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --- checking and building -------------------------------------------------------------


def _build(node: ast.AST, depth: int) -> _Evaluator:
    """Check one node (and its children) and return the function that evaluates it."""
    if depth > MAX_DEPTH:
        raise ConditionError("the expression is nested too deeply")
    builder = _BUILDERS.get(type(node))
    if builder is None:
        raise ConditionError(_rejection(node))
    return builder(node, depth + 1)


def _rejection(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        symbol = _OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
        return f"arithmetic operator '{symbol}' is not allowed"
    name = _CONSTRUCT_NAMES.get(type(node), type(node).__name__)
    return f"{name} is not allowed"


def _constant(value: Any) -> _Evaluator:
    return lambda env: value


def _build_constant(node: ast.Constant, depth: int) -> _Evaluator:
    if not isinstance(node.value, _LITERAL_TYPES):
        kind = "bytes literal" if isinstance(node.value, bytes) else repr(node.value)
        raise ConditionError(f"{kind} is not allowed")
    return _constant(node.value)


def _build_unary(node: ast.UnaryOp, depth: int) -> _Evaluator:
    if isinstance(node.op, ast.Not):
        operand = _build(node.operand, depth)
        return lambda env: not operand(env)
    if _is_signed_number(node):
        # `-1` is a literal to the reader even though Python parses it as an operation.
        value = node.operand.value  # type: ignore[attr-defined]
        return _constant(-value if isinstance(node.op, ast.USub) else +value)
    raise ConditionError(_rejection(node))


def _is_signed_number(node: ast.UnaryOp) -> bool:
    operand = node.operand
    return (
        isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(operand, ast.Constant)
        and isinstance(operand.value, int | float | complex)
        and not isinstance(operand.value, bool)
    )


def _check_literal(node: ast.AST, depth: int) -> None:
    """Display elements must be literals (or displays of literals) themselves."""
    if depth > MAX_DEPTH:
        raise ConditionError("the expression is nested too deeply")
    if isinstance(node, ast.Constant | ast.Tuple | ast.List | ast.Set):
        return
    if isinstance(node, ast.UnaryOp) and _is_signed_number(node):
        return
    if type(node) in _CONSTRUCT_NAMES or isinstance(node, ast.BinOp | ast.UnaryOp):
        raise ConditionError(_rejection(node))
    raise ConditionError("only literals are allowed inside tuple, list and set displays")


def _build_display(node: ast.Tuple | ast.List | ast.Set, depth: int) -> _Evaluator:
    for element in node.elts:
        _check_literal(element, depth)
    elements = [_build(element, depth) for element in node.elts]
    kind = {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)]
    return lambda env: kind(element(env) for element in elements)


def _build_name(node: ast.Name, depth: int) -> _Evaluator:
    if node.id == "image":
        return lambda env: env[0]
    if node.id == "metadata_set":
        return lambda env: env[1]
    raise ConditionError(f"name '{node.id}' is not allowed")


def _build_attribute(node: ast.Attribute, depth: int) -> _Evaluator:
    if not (isinstance(node.value, ast.Name) and node.value.id == "image"):
        _build(node.value, depth)  # report a bad receiver first, in reading order
        raise ConditionError(f"attribute '{node.attr}' is not allowed")
    if node.attr not in IMAGE_FIELDS:
        raise ConditionError(f"attribute '{node.attr}' is not allowed")
    attr = node.attr
    return lambda env: getattr(env[0], attr)


def _build_subscript(node: ast.Subscript, depth: int) -> _Evaluator:
    container = _build(node.value, depth)
    if isinstance(node.slice, ast.Slice):
        raise ConditionError("slice is not allowed")
    index = _build(node.slice, depth)
    return lambda env: container(env)[index(env)]


def _build_call(node: ast.Call, depth: int) -> _Evaluator:
    func = node.func
    if isinstance(func, ast.Name):
        raise ConditionError(f"function call '{func.id}' is not allowed")
    if not isinstance(func, ast.Attribute):
        _build(func, depth)
        raise ConditionError("call is not allowed")
    receiver = _build(func.value, depth)
    if func.attr not in _METHODS:
        raise ConditionError(f"method '{func.attr}' is not allowed")
    if node.keywords:
        raise ConditionError(f"keyword arguments are not allowed in '{func.attr}'")
    low, high = _METHODS[func.attr][0]
    if not low <= len(node.args) <= high:
        raise ConditionError(f"method '{func.attr}' takes {_arity(low, high)}")
    args = [_build(arg, depth) for arg in node.args]
    method = _METHODS[func.attr][1]
    return lambda env: method(receiver(env), *(arg(env) for arg in args))


def _arity(low: int, high: int) -> str:
    if low == high:
        return f"{low} argument" + ("s" if low != 1 else "")
    return f"{low} or {high} arguments"


def _dict_get(receiver: Any, *args: Any) -> Any:
    if not isinstance(receiver, dict):
        raise ConditionEvalError(f"get() needs a dict, not {type(receiver).__name__}")
    return dict.get(receiver, *args)


def _set_intersection(receiver: Any, other: Any) -> frozenset:
    if not isinstance(receiver, set | frozenset):
        raise ConditionEvalError(f"intersection() needs a set, not {type(receiver).__name__}")
    # Iterating a dict gives its keys, so intersecting with user_properties uses the keys.
    return frozenset(receiver).intersection(other)


_METHODS: dict[str, tuple[tuple[int, int], Callable[..., Any]]] = {
    "get": ((1, 2), _dict_get),
    "intersection": ((1, 1), _set_intersection),
}


def _build_compare(node: ast.Compare, depth: int) -> _Evaluator:
    left = _build(node.left, depth)
    steps = [
        (_COMPARE[type(op)], _build(right, depth))
        for op, right in zip(node.ops, node.comparators, strict=True)
    ]

    def compare(env: _Env) -> Any:
        current = left(env)
        for op, right in steps:
            value = right(env)
            if not op(current, value):
                return False
            current = value
        return True

    return compare


def _build_boolop(node: ast.BoolOp, depth: int) -> _Evaluator:
    values = [_build(value, depth) for value in node.values]
    if isinstance(node.op, ast.And):

        def all_of(env: _Env) -> Any:
            result = True
            for value in values:
                result = value(env)
                if not result:
                    return result
            return result

        return all_of

    def any_of(env: _Env) -> Any:
        result = False
        for value in values:
            result = value(env)
            if result:
                return result
        return result

    return any_of


_BUILDERS: dict[type[ast.AST], Callable[[Any, int], _Evaluator]] = {
    ast.Constant: _build_constant,
    ast.UnaryOp: _build_unary,
    ast.Tuple: _build_display,
    ast.List: _build_display,
    ast.Set: _build_display,
    ast.Name: _build_name,
    ast.Attribute: _build_attribute,
    ast.Subscript: _build_subscript,
    ast.Call: _build_call,
    ast.Compare: _build_compare,
    ast.BoolOp: _build_boolop,
}

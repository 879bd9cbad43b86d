"""The `when:` language: a tiny, safe expression language parsed here (never Python eval).

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") operand)?
    operand := number | "string" | 'string' | true | false | null | [list] | reference | "(" expr ")"
    reference := name("." name)*          e.g. params.force, steps.db.output.active_connections

A reference to something that is not available (a skipped step's output, an absent label) is null.
Comparing values of different kinds (a number with text, null with a number) is an error, so a typo
cannot silently turn a condition false.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediation.templates import Ref, TemplateError, lookup, parse_ref


class ExpressionError(ValueError):
    """Syntax or evaluation error; `column` (1-based) points at the offending token when known."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.column = column
        super().__init__(f"{message} (at column {column})" if column is not None else message)


_TOKENS = re.compile(
    r"""\s*(?:
        (?P<number>-?[0-9]+(?:\.[0-9]+)?)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*)
    )""",
    re.VERBOSE,
)
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=", "in")
_KEYWORDS = {"true": True, "false": False, "null": None}


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Reference:
    ref: Ref


@dataclass(frozen=True)
class ListOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


Node = Literal | Reference | ListOf | Not | BoolOp | Compare


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKENS.match(text, pos)
        if match is None or match.end() == pos:
            column = pos + 1 + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise ExpressionError(f"unexpected character {text[column - 1]!r}", column)
        kind = match.lastgroup or ""
        token_text = match.group(kind)
        column = match.start(kind) + 1
        if kind == "name" and token_text in ("and", "or", "not", "in"):
            kind = "op"
        tokens.append(_Token(kind, token_text, column))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise ExpressionError(
                f"expression ends early{f'; expected {expected!r}' if expected else ''}", len(self.text) + 1
            )
        if expected is not None and token.text != expected:
            raise ExpressionError(f"expected {expected!r} but found {token.text!r}", token.column)
        self.pos += 1
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in texts

    def parse(self) -> Node:
        if not self.tokens:
            raise ExpressionError("empty expression", 1)
        node = self.or_()
        token = self.peek()
        if token is not None:
            raise ExpressionError(
                f"unexpected {token.text!r} (join conditions with `and` / `or`)", token.column
            )
        return node

    def or_(self) -> Node:
        operands = [self.and_()]
        while self.at("or"):
            self.take()
            operands.append(self.and_())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_(self) -> Node:
        operands = [self.not_()]
        while self.at("and"):
            self.take()
            operands.append(self.not_())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def not_(self) -> Node:
        if self.at("not"):
            self.take()
            return Not(self.not_())
        return self.compare()

    def compare(self) -> Node:
        left = self.operand()
        if self.at(*_COMPARISONS):
            op = self.take().text
            right = self.operand()
            if self.at(*_COMPARISONS):
                token = self.take()
                raise ExpressionError("comparisons cannot be chained; join them with `and`", token.column)
            return Compare(op, left, right)
        return left

    def operand(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return Literal(float(token.text) if "." in token.text else int(token.text))
        if token.kind == "string":
            return Literal(_unquote(token.text))
        if token.kind == "name":
            if token.text in _KEYWORDS:
                return Literal(_KEYWORDS[token.text])
            try:
                return Reference(parse_ref(token.text))
            except TemplateError as err:
                raise ExpressionError(str(err).replace("${", "").replace("}", ""), token.column) from None
        if token.text == "(":
            node = self.or_()
            self.take(")")
            return node
        if token.text == "[":
            items: list[Node] = []
            while not self.at("]"):
                items.append(self.operand())
                if not self.at("]"):
                    self.take(",")
            self.take("]")
            return ListOf(tuple(items))
        raise ExpressionError(f"unexpected {token.text!r}", token.column)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def parse(text: str) -> Node:
    """Parse `text`; ExpressionError with a column on bad syntax."""
    return _Parser(text).parse()


def references(node: Node) -> list[Ref]:
    if isinstance(node, Reference):
        return [node.ref]
    if isinstance(node, Not):
        return references(node.operand)
    if isinstance(node, BoolOp | ListOf):
        children = node.operands if isinstance(node, BoolOp) else node.items
        return [ref for child in children for ref in references(child)]
    if isinstance(node, Compare):
        return references(node.left) + references(node.right)
    return []


def evaluate(node: Node, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Reference):
        try:
            return lookup(scope, node.ref)
        except TemplateError:
            return None
    if isinstance(node, ListOf):
        return [evaluate(item, scope) for item in node.items]
    if isinstance(node, Not):
        return not truthy(evaluate(node.operand, scope))
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(truthy(evaluate(child, scope)) for child in node.operands)
        return any(truthy(evaluate(child, scope)) for child in node.operands)
    return _compare(node.op, evaluate(node.left, scope), evaluate(node.right, scope))


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {})


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "list" if isinstance(value, list) else "object"


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "in":
        if not isinstance(right, list | str | Mapping):
            raise ExpressionError(f"`in` needs a list or text on its right, not {_kind(right)}")
        if isinstance(right, str) and not isinstance(left, str):
            raise ExpressionError(f"`in` on text needs text on its left, not {_kind(left)}")
        return left in right
    if op in ("==", "!="):
        equal = _kind(left) == _kind(right) and left == right
        return equal if op == "==" else not equal
    if _kind(left) != _kind(right) or _kind(left) not in ("number", "text"):
        raise ExpressionError(f"cannot compare {_kind(left)} {left!r} {op} {_kind(right)} {right!r}")
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)

"""text/template's parser: Go's ``parse.Tree`` (nodes, ``define``/``block``, variable
scoping, the function check) with its error messages, ``template: NAME:LINE: ...``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from dockyard.cli.gotemplate import lexer as L
from dockyard.cli.gotemplate.lexer import Item
from dockyard.cli.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    CommentNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateError,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
)

# ----------------------------------------------------------------------------- literals


_SIMPLE_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def unquote(s: str) -> str:
    """strconv.Unquote for "...", `...` and '...'; ValueError("invalid syntax")."""
    if len(s) < 2 or s[0] != s[-1] or s[0] not in "\"`'":
        raise ValueError("invalid syntax")
    q, body = s[0], s[1:-1]
    if q == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == q or c == "\n" and q == "'":
            raise ValueError("invalid syntax")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        e = body[i]
        i += 1
        if e in _SIMPLE_ESC:
            out.append(_SIMPLE_ESC[e])
        elif e == "\\" or e == q:
            out.append(e)
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            h = body[i : i + n]
            if len(h) < n or any(ch not in "0123456789abcdefABCDEF" for ch in h):
                raise ValueError("invalid syntax")
            i += n
            v = int(h, 16)
            if e == "x":
                # a single byte: kept as a surrogate escape when it is not ASCII
                out.append(chr(v) if v < 0x80 or q == "'" else chr(0xDC00 + v))
            else:
                if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                    raise ValueError("invalid syntax")
                out.append(chr(v))
        elif e in "01234567":
            o = body[i - 1 : i + 2]
            if len(o) < 3 or any(ch not in "01234567" for ch in o):
                raise ValueError("invalid syntax")
            i += 2
            v = int(o, 8)
            if v > 255:
                raise ValueError("invalid syntax")
            out.append(chr(v) if v < 0x80 or q == "'" else chr(0xDC00 + v))
        else:
            raise ValueError("invalid syntax")
    r = "".join(out)
    if q == "'" and len(r) != 1:
        raise ValueError("invalid syntax")
    return r


def _parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64)'s syntax (without the range check)."""
    t = text
    neg = t[:1] == "-"
    if t[:1] in "+-" and t:
        t = t[1:]
    if not t:
        return None
    try:
        if len(t) > 1 and t[0] == "0" and t[1] in "0123456789_":
            if "_" in t and not t[1:].replace("_", "").isdigit():
                return None
            v = int(t[1:].replace("_", "") or "0", 8)
        else:
            v = int(t, 0)
    except ValueError:
        return None
    return -v if neg else v


def new_number(pos: int, text: str, typ: int) -> NumberNode:
    """parse.newNumber: which of int/uint/float a constant can be."""
    n = NumberNode(pos, text)
    if typ == L.CHAR_CONSTANT:
        try:
            r = unquote(text)
        except ValueError:
            raise ValueError(f"malformed character constant: {text}") from None
        n.int64 = ord(r)
        n.float64 = float(ord(r))
        n.is_int = n.is_uint = n.is_float = True
        return n
    if typ == L.COMPLEX or text.endswith("i"):
        raise ValueError(f"complex constants are not supported: {text}")
    i = _parse_int(text)
    if i is not None:
        if 0 <= i < 1 << 64 and text[:1] != "-" or i == 0:
            n.is_uint = True
        if -(1 << 63) <= i < 1 << 63:
            n.is_int = True
            n.int64 = i
    if n.is_int:
        n.is_float = True
        n.float64 = float(n.int64)
    elif n.is_uint and i is not None:
        n.is_float = True
        n.float64 = float(i)
    else:
        f = _parse_float(text)
        if f is not None:
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {_gq(text)}")
            n.is_float = True
            n.float64 = f
            if f == int(f) and -(1 << 63) <= f < 1 << 63:
                n.is_int = True
                n.int64 = int(f)
            if f == int(f) and 0 <= f < 1 << 64:
                n.is_uint = True
    if not (n.is_int or n.is_uint or n.is_float):
        raise ValueError(f"illegal number syntax: {_gq(text)}")
    return n


def _parse_float(text: str) -> float | None:
    t = text.replace("_", "")
    try:
        if t.lstrip("+-")[:2] in ("0x", "0X"):
            return float.fromhex(t)
        if not all(c in "0123456789.eE+-" for c in t):
            return None
        return float(t)
    except (ValueError, OverflowError):
        return None


def _gq(s: str) -> str:
    from dockyard.cli.gotemplate.quote import go_quote

    return go_quote(s)


# ----------------------------------------------------------------------------- parser


class Tree:
    """One parse of a template text into ``root``; ``define``/``block`` add to ``tree_set``."""

    def __init__(
        self,
        name: str,
        has_function: Callable[[str], bool],
        tree_set: dict[str, Tree] | None = None,
    ) -> None:
        self.name = name
        self.parse_name = name
        self.root: ListNode | None = None
        self.has_function = has_function
        self.tree_set: dict[str, Tree] = {} if tree_set is None else tree_set
        self.text = ""
        self.lex: Iterator[Item] = iter(())
        self.token: list[Item] = [Item(L.EOF, 0, "", 1)] * 3
        self.peek_count = 0
        self.vars: list[str] = ["$"]
        self.action_line = 0
        self.range_depth = 0

    # -- token plumbing (Go's next/backup/peek with three tokens of lookahead)
    def next(self) -> Item:
        if self.peek_count > 0:
            self.peek_count -= 1
        else:
            self.token[0] = next(self.lex, Item(L.EOF, len(self.text), "", 0))
        return self.token[self.peek_count]

    def backup(self) -> None:
        self.peek_count += 1

    def backup2(self, t1: Item) -> None:
        self.token[1] = t1
        self.peek_count = 2

    def backup3(self, t2: Item, t1: Item) -> None:
        self.token[1] = t1
        self.token[2] = t2
        self.peek_count = 3

    def peek(self) -> Item:
        if self.peek_count > 0:
            return self.token[self.peek_count - 1]
        self.peek_count = 1
        self.token[0] = next(self.lex, Item(L.EOF, len(self.text), "", 0))
        return self.token[0]

    def next_non_space(self) -> Item:
        while True:
            t = self.next()
            if t.typ != L.SPACE:
                return t

    def peek_non_space(self) -> Item:
        t = self.next_non_space()
        self.backup()
        return t

    # -- errors
    def errorf(self, msg: str) -> NoReturn:
        self.root = None
        raise TemplateError(f"template: {self.parse_name}:{self.token[0].line}: {msg}")

    def expect(self, expected: int, context: str) -> Item:
        t = self.next_non_space()
        if t.typ != expected:
            self.unexpected(t, context)
        return t

    def unexpected(self, token: Item, context: str) -> NoReturn:
        if token.typ == L.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != token.line:
                extra = f" in action started at {self.parse_name}:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self.errorf(f"{token}{extra}")
        self.errorf(f"unexpected {token} in {context}")

    # -- entry
    def parse(self, text: str) -> Tree:
        self.text = text
        self.lex = L.Lexer(
            text,
            break_ok=not self.has_function("break"),
            continue_ok=not self.has_function("continue"),
        ).run()
        self._parse()
        self._add()
        return self

    def _sub_tree(self, name: str) -> Tree:
        t = Tree(name, self.has_function, self.tree_set)
        t.text = self.text
        t.parse_name = self.parse_name
        t.lex = self.lex
        return t

    def _add(self) -> None:
        tree = self.tree_set.get(self.name)
        if tree is None or is_empty_tree(tree.root):
            self.tree_set[self.name] = self
            return
        if not is_empty_tree(self.root):
            self.errorf(f"template: multiple definition of template {_gq(self.name)}")

    def _parse(self) -> None:
        self.root = ListNode(self.peek().pos)
        while self.peek().typ != L.EOF:
            if self.peek().typ == L.LEFT_DELIM:
                delim = self.next()
                if self.next_non_space().typ == L.DEFINE:
                    new = self._sub_tree("definition")
                    new._parse_definition()
                    continue
                self.backup2(delim)
            n = self.text_or_action()
            if isinstance(n, (EndNode, ElseNode)):
                self.errorf(f"unexpected {n}")
            self.root.nodes.append(n)

    def _parse_definition(self) -> None:
        context = "define clause"
        name = self.next_non_space()
        if name.typ not in (L.STRING, L.RAW_STRING):
            self.unexpected(name, context)
        try:
            self.name = unquote(name.val)
        except ValueError as e:
            self.errorf(str(e))
        self.expect(L.RIGHT_DELIM, context)
        self.root, end = self.item_list()
        if not isinstance(end, EndNode):
            self.errorf(f"unexpected {end} in {context}")
        self._add()

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != L.EOF:
            n = self.text_or_action()
            if isinstance(n, (EndNode, ElseNode)):
                return lst, n
            lst.nodes.append(n)
        self.errorf("unexpected EOF")
        raise AssertionError

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.typ == L.TEXT:
            return TextNode(token.pos, token.val)
        if token.typ == L.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        if token.typ == L.COMMENT:
            return CommentNode(token.pos, token.val)
        self.unexpected(token, "input")
        raise AssertionError

    def action(self) -> Node:
        token = self.next_non_space()
        t = token.typ
        if t == L.BLOCK:
            return self.block_control()
        if t == L.BREAK:
            return self.break_control(token)
        if t == L.CONTINUE:
            return self.continue_control(token)
        if t == L.ELSE:
            return self.else_control()
        if t == L.END:
            return EndNode(self.expect(L.RIGHT_DELIM, "end").pos)
        if t == L.IF:
            return IfNode(*self.parse_control(True, "if"))
        if t == L.RANGE:
            return RangeNode(*self.parse_control(False, "range"))
        if t == L.TEMPLATE:
            return self.template_control()
        if t == L.WITH:
            return WithNode(*self.parse_control(False, "with"))
        self.backup()
        token = self.peek()
        return ActionNode(token.pos, token.line, self.pipeline("command", L.RIGHT_DELIM))

    def break_control(self, tok: Item) -> Node:
        t = self.next_non_space()
        if t.typ != L.RIGHT_DELIM:
            self.unexpected(t, "{{break}}")
        if self.range_depth == 0:
            self.errorf("{{break}} outside {{range}}")
        return BreakNode(tok.pos)

    def continue_control(self, tok: Item) -> Node:
        t = self.next_non_space()
        if t.typ != L.RIGHT_DELIM:
            self.unexpected(t, "{{continue}}")
        if self.range_depth == 0:
            self.errorf("{{continue}} outside {{range}}")
        return ContinueNode(tok.pos)

    def pipeline(self, context: str, end: int) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos, token.line)
        while True:  # decls
            v = self.peek_non_space()
            if v.typ != L.VARIABLE:
                break
            self.next()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in (L.ASSIGN, L.DECLARE):
                pipe.is_assign = nxt.typ == L.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.val))
                self.vars.append(v.val)
            elif nxt.typ == L.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.val))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (L.VARIABLE, L.RIGHT_DELIM, L.RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            elif after.typ == L.SPACE:
                self.backup3(v, after)
            else:
                self.backup2(v)
            break
        while True:
            token = self.next_non_space()
            if token.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in (
                L.BOOL,
                L.CHAR_CONSTANT,
                L.COMPLEX,
                L.DOT,
                L.FIELD,
                L.IDENTIFIER,
                L.NUMBER,
                L.NIL,
                L.RAW_STRING,
                L.STRING,
                L.VARIABLE,
                L.LEFT_PAREN,
            ):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(token, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def parse_control(
        self, allow_else_if: bool, context: str
    ) -> tuple[int, int, PipeNode, ListNode, ListNode | None]:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, L.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, ElseNode):
                if allow_else_if and self.peek().typ == L.IF:
                    self.next()
                    else_list = ListNode(nxt.pos)
                    else_list.nodes.append(IfNode(*self.parse_control(True, "if")))
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, EndNode):
                        self.errorf(f"expected end; found {nxt}")
            return pipe.pos, pipe.line, pipe, lst, else_list
        finally:
            del self.vars[mark:]

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ == L.IF:
            return ElseNode(peek.pos, peek.line)
        token = self.expect(L.RIGHT_DELIM, "else")
        return ElseNode(token.pos, token.line)

    def block_control(self) -> Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.parse_template_name(token, context)
        pipe = self.pipeline(context, L.RIGHT_DELIM)
        block = self._sub_tree(name)
        block.root, end = block.item_list()
        if not isinstance(end, EndNode):
            self.errorf(f"unexpected {end} in {context}")
        block._add()
        return TemplateNode(token.pos, token.line, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        token = self.next_non_space()
        name = self.parse_template_name(token, context)
        pipe = None
        if self.next_non_space().typ != L.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, L.RIGHT_DELIM)
        return TemplateNode(token.pos, token.line, name, pipe)

    def parse_template_name(self, token: Item, context: str) -> str:
        if token.typ in (L.STRING, L.RAW_STRING):
            try:
                return unquote(token.val)
            except ValueError as e:
                self.errorf(str(e))
        self.unexpected(token, context)
        raise AssertionError

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ == L.SPACE:
                continue
            if token.typ in (L.RIGHT_DELIM, L.RIGHT_PAREN):
                self.backup()
            elif token.typ != L.PIPE:
                self.unexpected(token, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == L.FIELD:
            chain = ChainNode(self.peek().pos, node)
            while self.peek().typ == L.FIELD:
                chain.add(self.next().val)
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, str(chain))
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, str(chain))
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.errorf(f"unexpected . after term {_gq(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        t = token.typ
        if t == L.IDENTIFIER:
            if not self.has_function(token.val):
                self.errorf(f"function {_gq(token.val)} not defined")
            return IdentifierNode(token.pos, token.val)
        if t == L.DOT:
            return DotNode(token.pos)
        if t == L.NIL:
            return NilNode(token.pos)
        if t == L.VARIABLE:
            return self.use_var(token.pos, token.val)
        if t == L.FIELD:
            return FieldNode(token.pos, token.val)
        if t == L.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if t in (L.CHAR_CONSTANT, L.COMPLEX, L.NUMBER):
            try:
                return new_number(token.pos, token.val, t)
            except ValueError as e:
                self.errorf(str(e))
        if t == L.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", L.RIGHT_PAREN)
        if t in (L.STRING, L.RAW_STRING):
            try:
                return StringNode(token.pos, token.val, unquote(token.val))
            except ValueError as e:
                self.errorf(str(e))
        self.backup()
        return None

    def use_var(self, pos: int, name: str) -> Node:
        v = VariableNode(pos, name)
        if v.ident[0] in self.vars:
            return v
        self.errorf(f"undefined variable {_gq(v.ident[0])}")
        raise AssertionError


def is_empty_tree(n: Node | None) -> bool:
    if n is None or isinstance(n, CommentNode):
        return True
    if isinstance(n, ListNode):
        return all(is_empty_tree(x) for x in n.nodes)
    if isinstance(n, TextNode):
        return n.text.strip(" \t\n\v\f\r\x85\xa0") == ""
    return False


def parse(text: str, has_function: Callable[[str], bool], name: str = "") -> dict[str, Any]:
    """Parse ``text``; the trees by name (the main one under ``name``)."""
    tree_set: dict[str, Tree] = {}
    Tree(name, has_function, tree_set).parse(text)
    return tree_set

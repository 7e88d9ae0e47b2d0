"""text/template's executor (Go's ``exec.go``) over the value model of ``values.py``: the same
walk, argument checks and error texts (``template: :1:2: executing "" at <.Foo>: ...``)."""

from __future__ import annotations

from typing import Any, NoReturn

from dockyard.cli.gotemplate import gofmt
from dockyard.cli.gotemplate import nodes as P
from dockyard.cli.gotemplate.funcs import Func, FuncError
from dockyard.cli.gotemplate.nodes import TemplateError
from dockyard.cli.gotemplate.parser import Tree
from dockyard.cli.gotemplate.quote import go_quote
from dockyard.cli.gotemplate.values import (
    NIL_IFACE,
    GoMap,
    GoNil,
    GoStruct,
    HeaderMap,
    StructDict,
    is_str_list,
    is_true,
    kind,
    type_name,
)

MAX_DEPTH = 100000
_MISSING = object()  # Go's missingVal: "no final value piped in"


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class State:
    def __init__(
        self,
        trees: dict[str, Tree],
        name: str,
        funcs: dict[str, Func],
        out: list[str],
        missing_key_error: bool,
    ) -> None:
        self.trees = trees
        self.name = name
        self.funcs = funcs
        self.out = out
        self.missing_key_error = missing_key_error
        self.node: P.Node | None = None
        self.vars: list[list[Any]] = []
        self.depth = 0
        # Whether dot sits in an interface{} (an element of a map or []interface{}): Go then
        # names its type "interface {}" in "can't evaluate field" errors.
        self.dot_boxed = False

    # -- errors
    def errorf(self, msg: str) -> NoReturn:
        name = self.name
        if self.node is None:
            raise TemplateError(f"template: {name}: {msg}")
        tree = self.trees[self.name]
        text = tree.text[: self.node.pos]
        nl = text.rfind("\n")
        col = (
            len(text[nl + 1 :].encode("utf-8", "surrogateescape"))
            if nl >= 0
            else len(text.encode("utf-8", "surrogateescape"))
        )
        line = 1 + text.count("\n")
        where = f"{tree.parse_name}:{line}:{col}"
        raise TemplateError(
            f"template: {where}: executing {go_quote(name)} at <{self.node}>: {msg}"
        )

    # -- variables
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value, False])

    def set_var(self, name: str, value: Any) -> None:
        for v in reversed(self.vars):
            if v[0] == name:
                v[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> tuple[Any, bool]:
        for v in reversed(self.vars):
            if v[0] == name:
                return v[1], v[2]
        self.errorf(f"undefined variable: {name}")

    # -- walking
    def walk(self, dot: Any, node: P.Node) -> None:
        self.node = node
        if isinstance(node, P.ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.node = node
                self.out.append(gofmt.format_v(val))
        elif isinstance(node, P.ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, P.TextNode):
            self.out.append(node.text)
        elif isinstance(node, (P.IfNode, P.WithNode)):
            self.walk_if_or_with(node, dot)
        elif isinstance(node, P.RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, P.TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, P.BreakNode):
            raise _Break
        elif isinstance(node, P.ContinueNode):
            raise _Continue
        elif isinstance(node, P.CommentNode):
            pass
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, node: P.BranchNode, dot: Any) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            if is_true(val):
                if isinstance(node, P.WithNode):
                    boxed, self.dot_boxed = self.dot_boxed, False
                    try:
                        self.walk(val, node.list)
                    finally:
                        self.dot_boxed = boxed
                else:
                    self.walk(dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, r: P.RangeNode) -> None:
        self.node = r
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, r.pipe)
            inner = len(self.vars)
            if isinstance(val, list):
                pairs: list[tuple[Any, Any]] = list(enumerate(val))
            elif isinstance(val, StructDict):
                self.errorf(f"range can't iterate over {gofmt.format_v(val, False)}")
                return
            elif isinstance(val, dict):
                pairs = [(k, val[k]) for k in sorted(val)]
            elif val is None or isinstance(val, GoNil):
                pairs = []
            else:
                self.errorf(f"range can't iterate over {gofmt.format_v(val, False)}")
                return
            elem_boxed = (isinstance(val, list) and not is_str_list(val)) or (
                isinstance(val, dict) and not isinstance(val, (GoMap, HeaderMap))
            )
            outer_boxed = self.dot_boxed
            for index, elem in pairs:
                if elem is None:
                    elem = NIL_IFACE
                if r.pipe.decl:
                    self.vars[-1][1:] = [elem, elem_boxed]
                if len(r.pipe.decl) > 1:
                    self.vars[-2][1:] = [index, False]
                self.dot_boxed = elem_boxed
                try:
                    self.walk(elem, r.list)
                except _Continue:
                    pass
                except _Break:
                    return
                finally:
                    self.dot_boxed = outer_boxed
                    del self.vars[inner:]
            if not pairs and r.else_list is not None:
                self.walk(dot, r.else_list)
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: Any, t: P.TemplateNode) -> None:
        self.node = t
        if t.name not in self.trees:
            self.errorf(f"template {go_quote(t.name)} not defined")
        if self.depth == MAX_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")
        dot = self.eval_pipeline(dot, t.pipe)
        sub = State(self.trees, t.name, self.funcs, self.out, self.missing_key_error)
        sub.depth = self.depth + 1
        sub.vars = [["$", dot, False]]
        root = self.trees[t.name].root
        if root is not None:
            sub.walk(dot, root)

    # -- evaluation
    def eval_pipeline(self, dot: Any, pipe: P.PipeNode | None) -> Any:
        if pipe is None:
            return None
        self.node = pipe
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is NIL_IFACE:
                value = None
        for v in pipe.decl:
            if pipe.is_assign:
                self.set_var(v.ident[0], value)
            else:
                self.push(v.ident[0], value)
        return value

    def not_a_function(self, args: list[P.Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: P.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, P.FieldNode):
            self.node = first
            return self.eval_field_chain(
                dot, dot, first, first.ident, cmd.args, final, self.dot_boxed
            )
        if isinstance(first, P.ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, P.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, P.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, P.VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, P.BoolNode):
            return first.true
        if isinstance(first, P.DotNode):
            return dot
        if isinstance(first, P.NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, P.NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, P.StringNode):
            return first.text
        self.errorf(f"can't evaluate command {go_quote(str(first))}")

    def ideal_constant(self, c: P.NumberNode) -> Any:
        self.node = c
        t = c.text
        is_hex = len(t) > 2 and t[0] == "0" and t[1] in "xX" and not any(x in t for x in "pP")
        if c.is_float and not is_hex and t[0] != "'" and any(x in t for x in ".eEpP"):
            return c.float64
        if c.is_int:
            return c.int64
        if c.is_uint:
            self.errorf(f"{t} overflows int")
        return None

    def eval_chain(self, dot: Any, chain: P.ChainNode, args: list[P.Node], final: Any) -> Any:
        self.node = chain
        if isinstance(chain.node, P.NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, "any", chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.field, args, final)

    def eval_variable(self, dot: Any, v: P.VariableNode, args: list[P.Node], final: Any) -> Any:
        self.node = v
        value, boxed = self.var_value(v.ident[0])
        if len(v.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, v, v.ident[1:], args, final, boxed)

    def eval_field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: P.Node,
        ident: list[str],
        args: list[P.Node] | None,
        final: Any,
        boxed: bool = False,
    ) -> Any:
        for name in ident[:-1]:
            value = self.eval_field(dot, name, node, None, _MISSING, receiver, boxed)
            boxed = isinstance(receiver, dict) and not isinstance(
                receiver, (GoMap, HeaderMap, StructDict)
            )
            receiver = value
        return self.eval_field(dot, ident[-1], node, args, final, receiver, boxed)

    def eval_function(
        self,
        dot: Any,
        node: P.IdentifierNode,
        cmd: P.Node,
        args: list[P.Node] | None,
        final: Any,
    ) -> Any:
        self.node = node
        fn = self.funcs.get(node.ident)
        if fn is None:
            self.errorf(f"{go_quote(node.ident)} is not a defined function")
        assert fn is not None
        return self.eval_call(dot, fn, cmd, node.ident, args, final)

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: P.Node,
        args: list[P.Node] | None,
        final: Any,
        receiver: Any,
        boxed: bool = False,
    ) -> Any:
        if receiver is None:
            if self.missing_key_error:
                self.errorf(f"nil data; no entry for key {go_quote(name)}")
            return None
        if receiver is NIL_IFACE:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, GoNil) and receiver.kind == "ptr":
            # a nil pointer in Docker's typed struct; its raw-JSON fallback sees a null
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        method = None
        if isinstance(receiver, (GoStruct, HeaderMap)):
            method = receiver.go_methods.get(name)
        if method is not None:
            fn = getattr(receiver, name)
            return self.eval_call(dot, Func(fn, method), node, name, args, final)
        has_args = (args is not None and len(args) > 1) or final is not _MISSING
        if isinstance(receiver, dict) or (isinstance(receiver, GoNil) and receiver.kind == "map"):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if isinstance(receiver, GoNil):
                return None
            if name in receiver:
                v = receiver[name]
                return NIL_IFACE if v is None else v
            if isinstance(receiver, StructDict) and name in receiver.omitted:
                return receiver.omitted[name]
            if self.missing_key_error and not isinstance(receiver, (GoMap, HeaderMap)):
                self.errorf(f"map has no entry for key {go_quote(name)}")
            return None
        typ = "interface {}" if boxed else type_name(receiver)
        self.errorf(f"can't evaluate field {name} in type {typ}")

    def eval_call(
        self,
        dot: Any,
        fn: Func,
        node: P.Node,
        name: str,
        args: list[P.Node] | None,
        final: Any,
    ) -> Any:
        args = args[1:] if args is not None else []
        num_in = len(args) + (0 if final is _MISSING else 1)
        num_fixed = len(args)
        n_params = len(fn.params) + (1 if fn.variadic else 0)
        if fn.variadic:
            num_fixed = len(fn.params)
            if num_in < num_fixed:
                self.errorf(
                    f"wrong number of args for {name}: want at least {num_fixed} got {len(args)}"
                )
        elif num_in != len(fn.params):
            self.errorf(f"wrong number of args for {name}: want {n_params} got {num_in}")
        if name in ("and", "or") and fn.fn is is_true and fn.variadic:
            v: Any = None
            for a in args:
                v = self.eval_arg(dot, "any", a)
                if is_true(v) == (name == "or"):
                    return v
            if final is not _MISSING:
                v = final
            return v
        argv: list[Any] = []
        i = 0
        while i < num_fixed and i < len(args):
            argv.append(self.eval_arg(dot, fn.params[i], args[i]))
            i += 1
        if fn.variadic:
            while i < len(args):
                argv.append(self.eval_arg(dot, fn.variadic, args[i]))
                i += 1
        if final is not _MISSING:
            if fn.variadic and num_in - 1 >= num_fixed:
                t = fn.variadic
            else:
                t = fn.params[num_in - 1] if fn.params else "any"
            argv.append(self.validate_type(final, t))
        if name != "len":  # builtins take reflect.Values and look through nil interfaces
            argv = [None if a is NIL_IFACE else a for a in argv]
        try:
            return fn.fn(*argv)
        except FuncError as e:
            self.node = node
            self.errorf(f"error calling {name}: {e}")

    def validate_type(self, value: Any, typ: str) -> Any:
        go = {"string": "string", "int": "int", "strslice": "[]string"}.get(typ)
        if value is None:
            if typ in ("any", "strslice"):
                return None if typ == "any" else []
            self.errorf(f"invalid value; expected {go}")
        if typ == "any":
            return value
        if typ == "string" and isinstance(value, str):
            return value
        if typ == "int" and type(value) is int:
            return value
        if typ == "strslice":
            if isinstance(value, list) and is_str_list(value):
                return value
            if isinstance(value, GoNil) and value.kind == "slice":
                return []
        self.errorf(f"wrong type for value; expected {go}; got {type_name(value)}")

    def eval_arg(self, dot: Any, typ: str, n: P.Node) -> Any:
        self.node = n
        if isinstance(n, P.DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, P.NilNode):
            if typ in ("any", "strslice"):
                return None if typ == "any" else []
            self.errorf(f"cannot assign nil to {typ}")
        if isinstance(n, P.FieldNode):
            self.node = n
            v = self.eval_field_chain(dot, dot, n, n.ident, [n], _MISSING, self.dot_boxed)
            return self.validate_type(v, typ)
        if isinstance(n, P.VariableNode):
            return self.validate_type(self.eval_variable(dot, n, [], _MISSING), typ)
        if isinstance(n, P.PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, P.IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, None, _MISSING), typ)
        if isinstance(n, P.ChainNode):
            return self.validate_type(self.eval_chain(dot, n, [], _MISSING), typ)
        if typ == "any":
            if isinstance(n, P.BoolNode):
                return n.true
            if isinstance(n, P.NumberNode):
                return self.ideal_constant(n)
            if isinstance(n, P.StringNode):
                return n.text
            self.errorf(f"can't handle assignment of {n} to empty interface argument")
        if typ == "string":
            if isinstance(n, P.StringNode):
                return n.text
            self.errorf(f"expected string; found {n}")
        if typ == "int":
            if isinstance(n, P.NumberNode) and n.is_int:
                return n.int64
            self.errorf(f"expected integer; found {n}")
        self.errorf(f"can't handle {n} for arg of type []string")


def execute(
    trees: dict[str, Tree],
    data: Any,
    funcs: dict[str, Func],
    name: str = "",
    missing_key_error: bool = False,
) -> str:
    state = State(trees, name, funcs, [], missing_key_error)
    state.vars = [["$", data, False]]
    tree = trees.get(name)
    if tree is None or tree.root is None:
        state.errorf(f"{go_quote(name)} is an incomplete or empty template")
    assert tree is not None and tree.root is not None
    try:
        state.walk(data, tree.root)
    except TemplateError as e:
        e.partial = "".join(state.out)  # type: ignore[attr-defined]  # Go wrote it already
        raise
    except RecursionError:
        raise TemplateError(f"template: {name}: exceeded maximum template depth") from None
    return "".join(state.out)


__all__ = ["execute", "kind"]

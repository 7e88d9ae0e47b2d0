"""text/template's lexer: the same items, positions and error texts as Go's
``text/template/parse/lex.go``, produced lazily so that a parse error found before a lex
error wins, as in Go (where the lexer runs beside the parser)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

# Item types, in Go's order (everything after KEYWORD is a keyword).
(
    ERROR,
    BOOL,
    CHAR,
    CHAR_CONSTANT,
    COMMENT,
    COMPLEX,
    ASSIGN,
    DECLARE,
    EOF,
    FIELD,
    IDENTIFIER,
    LEFT_DELIM,
    LEFT_PAREN,
    NUMBER,
    PIPE,
    RAW_STRING,
    RIGHT_DELIM,
    RIGHT_PAREN,
    SPACE,
    STRING,
    TEXT,
    VARIABLE,
    KEYWORD,
    BLOCK,
    BREAK,
    CONTINUE,
    DOT,
    DEFINE,
    ELSE,
    END,
    IF,
    NIL,
    RANGE,
    TEMPLATE,
    WITH,
) = range(35)

KEYWORDS = {
    ".": DOT,
    "block": BLOCK,
    "break": BREAK,
    "continue": CONTINUE,
    "define": DEFINE,
    "else": ELSE,
    "end": END,
    "if": IF,
    "range": RANGE,
    "nil": NIL,
    "template": TEMPLATE,
    "with": WITH,
}

SPACE_CHARS = " \t\r\n"
LEFT, RIGHT = "{{", "}}"


class Item(NamedTuple):
    typ: int
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        from dockyard.cli.gotemplate.quote import go_quote

        if self.typ == EOF:
            return "EOF"
        if self.typ == ERROR:
            return self.val
        if self.typ > KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def _is_space(c: str) -> bool:
    return c in (" ", "\t", "\r", "\n") and c != ""


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or (c.isdigit() and c.isdecimal())


def _unicode_name(c: str) -> str:
    """Go's %#U: U+0021 '!'."""
    return f"U+{ord(c):04X} '{c}'" if c else "U+FFFFFFFF"


class Lexer:
    """Yields Items from ``run()``; after an ERROR item nothing more comes."""

    def __init__(self, text: str, break_ok: bool = True, continue_ok: bool = True) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.paren_depth = 0
        self.break_ok = break_ok
        self.continue_ok = continue_ok
        self.items: list[Item] = []

    # -- primitives
    def next(self) -> str:
        if self.pos >= len(self.input):
            self.pos += 1  # so that backup() after EOF is harmless
            return ""
        c = self.input[self.pos]
        self.pos += 1
        if c == "\n":
            self.line += 1
        return c

    def backup(self) -> None:
        self.pos -= 1
        if self.pos < len(self.input) and self.input[self.pos] == "\n":
            self.line -= 1

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def emit(self, typ: int) -> None:
        self.items.append(Item(typ, self.start, self.input[self.start : self.pos], self.start_line))
        self.start = self.pos
        self.start_line = self.line

    def ignore(self) -> None:
        self.line += self.input.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def accept(self, valid: str) -> bool:
        c = self.next()
        if c and c in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while True:
            c = self.next()
            if not c or c not in valid:
                break
        self.backup()

    def errorf(self, msg: str) -> None:
        self.items.append(Item(ERROR, self.start, msg, self.start_line))
        return None

    # -- driver
    def run(self) -> Iterator[Item]:
        state: Any = self.lex_text
        while state is not None:
            state = state()
            if self.items:
                yield from self.items
                if self.items[-1].typ in (ERROR, EOF):
                    return
                self.items.clear()

    # -- states (each returns the next state, or None to stop)
    def lex_text(self):  # type: ignore[no-untyped-def]
        x = self.input.find(LEFT, self.pos)
        if x >= 0:
            self.pos = x
            trim = 0
            after = self.input[x + 2 :]
            if len(after) >= 2 and after[0] == "-" and _is_space(after[1]):
                text = self.input[self.start : self.pos]
                trim = len(text) - len(text.rstrip(SPACE_CHARS))
            self.pos -= trim
            if self.pos > self.start:
                self.line += self.input.count("\n", self.start, self.pos)
                self.emit(TEXT)
            self.pos += trim
            self.ignore()
            return self.lex_left_delim
        self.pos = len(self.input)
        if self.pos > self.start:
            self.line += self.input.count("\n", self.start, self.pos)
            self.emit(TEXT)
        self.emit(EOF)
        return None

    def _at_right_delim(self) -> tuple[bool, bool]:
        s = self.input[self.pos :]
        if len(s) >= 2 and _is_space(s[0]) and s[1] == "-" and s[2:].startswith(RIGHT):
            return True, True
        if s.startswith(RIGHT):
            return True, False
        return False, False

    def lex_left_delim(self):  # type: ignore[no-untyped-def]
        self.pos += 2
        s = self.input[self.pos :]
        trim = len(s) >= 2 and s[0] == "-" and _is_space(s[1])
        after = 2 if trim else 0
        if self.input.startswith("/*", self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment
        self.emit(LEFT_DELIM)
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self):  # type: ignore[no-untyped-def]
        self.pos += 2
        i = self.input.find("*/", self.pos)
        if i < 0:
            return self.errorf("unclosed comment")
        self.pos = i + 2
        delim, trim = self._at_right_delim()
        if not delim:
            return self.errorf("comment ends before closing delimiter")
        if trim:
            self.pos += 2
        self.pos += 2
        if trim:
            rest = self.input[self.pos :]
            self.pos += len(rest) - len(rest.lstrip(SPACE_CHARS))
        self.ignore()
        return self.lex_text

    def lex_right_delim(self):  # type: ignore[no-untyped-def]
        s = self.input[self.pos :]
        trim = len(s) >= 2 and _is_space(s[0]) and s[1] == "-"
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += 2
        self.emit(RIGHT_DELIM)
        if trim:
            rest = self.input[self.pos :]
            self.pos += len(rest) - len(rest.lstrip(SPACE_CHARS))
            self.ignore()
        return self.lex_text

    def lex_inside_action(self):  # type: ignore[no-untyped-def]
        delim, _ = self._at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            return self.errorf("unclosed left paren")
        c = self.next()
        if c == "":
            return self.errorf("unclosed action")
        if _is_space(c):
            self.backup()
            return self.lex_space
        if c == "=":
            self.emit(ASSIGN)
        elif c == ":":
            if self.next() != "=":
                return self.errorf("expected :=")
            self.emit(DECLARE)
        elif c == "|":
            self.emit(PIPE)
        elif c == '"':
            return self.lex_quote
        elif c == "`":
            return self.lex_raw_quote
        elif c == "$":
            return self.lex_variable
        elif c == "'":
            return self.lex_char
        elif c == "." and self.pos < len(self.input) and not "0" <= self.input[self.pos] <= "9":
            return self.lex_field
        elif c in "+-." or "0" <= c <= "9":
            self.backup()
            return self.lex_number
        elif _is_alnum(c):
            self.backup()
            return self.lex_identifier
        elif c == "(":
            self.emit(LEFT_PAREN)
            self.paren_depth += 1
        elif c == ")":
            self.emit(RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self.errorf(f"unexpected right paren {_unicode_name(c)}")
        elif ord(c) < 0x80 and c.isprintable():
            self.emit(CHAR)
        else:
            return self.errorf(f"unrecognized character in action: {_unicode_name(c)}")
        return self.lex_inside_action

    def lex_space(self):  # type: ignore[no-untyped-def]
        n = 0
        while _is_space(self.peek()):
            self.next()
            n += 1
        s = self.input[self.pos - 1 :]
        if len(s) >= 2 and _is_space(s[0]) and s[1] == "-" and s[2:].startswith(RIGHT):
            self.backup()
            if n == 1:
                return self.lex_right_delim
        self.emit(SPACE)
        return self.lex_inside_action

    def lex_identifier(self):  # type: ignore[no-untyped-def]
        while True:
            c = self.next()
            if not _is_alnum(c) or c == "":
                self.backup()
                word = self.input[self.start : self.pos]
                if not self._at_terminator():
                    return self.errorf(f"bad character {_unicode_name(c)}")
                kw = KEYWORDS.get(word)
                if kw is not None and kw > KEYWORD:
                    if (kw == BREAK and not self.break_ok) or (
                        kw == CONTINUE and not self.continue_ok
                    ):
                        self.emit(IDENTIFIER)
                    else:
                        self.emit(kw)
                elif word[0] == ".":
                    self.emit(FIELD)
                elif word in ("true", "false"):
                    self.emit(BOOL)
                else:
                    self.emit(IDENTIFIER)
                return self.lex_inside_action

    def lex_field(self):  # type: ignore[no-untyped-def]
        return self._field_or_variable(FIELD)

    def lex_variable(self):  # type: ignore[no-untyped-def]
        if self._at_terminator():
            self.emit(VARIABLE)
            return self.lex_inside_action
        return self._field_or_variable(VARIABLE)

    def _field_or_variable(self, typ: int):  # type: ignore[no-untyped-def]
        if self._at_terminator():
            self.emit(VARIABLE if typ == VARIABLE else DOT)
            return self.lex_inside_action
        while True:
            c = self.next()
            if not _is_alnum(c) or c == "":
                self.backup()
                break
        if not self._at_terminator():
            return self.errorf(f"bad character {_unicode_name(c)}")
        self.emit(typ)
        return self.lex_inside_action

    def _at_terminator(self) -> bool:
        c = self.peek()
        if c == "" or _is_space(c) or c in ".,|:)(":
            return True
        return self.input.startswith(RIGHT, self.pos)

    def lex_char(self):  # type: ignore[no-untyped-def]
        while True:
            c = self.next()
            if c == "\\":
                c2 = self.next()
                if c2 not in ("", "\n"):
                    continue
                return self.errorf("unterminated character constant")
            if c in ("", "\n"):
                return self.errorf("unterminated character constant")
            if c == "'":
                break
        self.emit(CHAR_CONSTANT)
        return self.lex_inside_action

    def lex_number(self):  # type: ignore[no-untyped-def]
        if not self._scan_number():
            return self.errorf(f"bad number syntax: {_q(self.input[self.start : self.pos])}")
        if self.peek() in ("+", "-") and self.peek() != "":
            if not self._scan_number() or self.input[self.pos - 1] != "i":
                return self.errorf(f"bad number syntax: {_q(self.input[self.start : self.pos])}")
            self.emit(COMPLEX)
        else:
            self.emit(NUMBER)
        return self.lex_inside_action

    def _scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if _is_alnum(self.peek()) and self.peek() != "":
            self.next()
            return False
        return True

    def lex_quote(self):  # type: ignore[no-untyped-def]
        while True:
            c = self.next()
            if c == "\\":
                c2 = self.next()
                if c2 not in ("", "\n"):
                    continue
                return self.errorf("unterminated quoted string")
            if c in ("", "\n"):
                return self.errorf("unterminated quoted string")
            if c == '"':
                break
        self.emit(STRING)
        return self.lex_inside_action

    def lex_raw_quote(self):  # type: ignore[no-untyped-def]
        while True:
            c = self.next()
            if c == "":
                return self.errorf("unterminated raw quoted string")
            if c == "`":
                break
        self.emit(RAW_STRING)
        return self.lex_inside_action


def _q(s: str) -> str:
    from dockyard.cli.gotemplate.quote import go_quote

    return go_quote(s)

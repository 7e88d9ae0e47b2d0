"""Docker's word processing for Dockerfile arguments: quotes, escapes and ``$var`` expansion.

Follows BuildKit's ``shell/lex.go``: single quotes are literal; inside double quotes the escape
character escapes only ``"``, ``$`` and itself; ``$name`` and ``${name}`` expand, with the
modifiers ``${a:-word}``, ``${a-word}``, ``${a:+word}``, ``${a+word}``, ``${a:?msg}`` and
``${a?msg}``; an unset variable expands to nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.errors import InvalidArgument


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.s = text
        self.i = 0
        self.env = env
        self.esc = escape
        self.used: set[str] = set()

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1
        return ch

    def word(self, stop: str = "") -> str:
        """Read until ``stop`` (unquoted) or the end; quotes and escapes removed."""
        out: list[str] = []
        while self.i < len(self.s):
            ch = self.peek()
            if stop and ch in stop:
                break
            self.i += 1
            if ch == self.esc:
                nxt = self.next()
                out.append(nxt)  # a trailing escape character disappears, as in Docker
            elif ch == "'":
                out.append(self.single())
            elif ch == '"':
                out.append(self.double())
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)
        return "".join(out)

    def single(self) -> str:
        end = self.s.find("'", self.i)
        if end < 0:
            raise InvalidArgument("unexpected end of statement while looking for matching '")
        text = self.s[self.i : end]
        self.i = end + 1
        return text

    def double(self) -> str:
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise InvalidArgument('unexpected end of statement while looking for matching "')
            ch = self.next()
            if ch == '"':
                return "".join(out)
            if ch == self.esc:
                nxt = self.peek()
                if nxt in ('"', "$", self.esc) and nxt:
                    self.i += 1
                    out.append(nxt)
                else:
                    out.append(ch)
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)

    def name(self) -> str:
        start = self.i
        if self.peek().isdigit():  # $1: positional, one digit (always empty here)
            self.i += 1
            return self.s[start : self.i]
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] == "_"):
            self.i += 1
        return self.s[start : self.i]

    def lookup(self, name: str) -> str | None:
        self.used.add(name)
        return self.env.get(name)

    def dollar(self) -> str:
        if self.peek() == "{":
            self.i += 1
            return self.braced()
        name = self.name()
        if not name:
            return "$"
        return self.lookup(name) or ""

    def braced(self) -> str:
        name = self.name()
        if not name:
            raise InvalidArgument(f"bad substitution in {self.s!r}")
        ch = self.next()
        if ch == "}":
            return self.lookup(name) or ""
        colon = False
        if ch == ":":
            colon = True
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise InvalidArgument(
                f"unsupported modifier ({ch or 'end'}) in substitution {self.s!r}"
            )
        word = self.word_until_brace()
        value = self.lookup(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set and value is not None else word
        if ch == "+":
            return word if is_set else ""
        if not is_set:
            raise InvalidArgument(f"{name}: {word or 'is not allowed to be unset'}")
        return value or ""

    def word_until_brace(self) -> str:
        out: list[str] = []
        depth = 0
        while True:
            if self.i >= len(self.s):
                raise InvalidArgument(f"missing '}}' in substitution {self.s!r}")
            ch = self.peek()
            if ch == "}" and depth == 0:
                self.i += 1
                return "".join(out)
            if ch == "$" and self.s[self.i + 1 : self.i + 2] == "{":
                self.i += 2
                out.append(self.braced())
                continue
            out.append(self.word(stop="}$") if ch not in "}$" else self._dollar_once())
        # unreachable

    def _dollar_once(self) -> str:
        self.i += 1
        return self.dollar()


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One Dockerfile word after quote removal and variable expansion (``ProcessWord``)."""
    return _Lexer(word, env, escape).word()


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Split ``text`` on unquoted whitespace, then expand each word (``ProcessWords``)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == escape and quote == '"' and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch == escape and i + 1 < len(text):
            cur += [ch, text[i + 1]]
            i += 1
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch.isspace():
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        words.append("".join(cur))
    return [expand(w, env, escape) for w in words]


def used_names(word: str, env: Mapping[str, str], escape: str = "\\") -> set[str]:
    """The variable names ``word`` refers to (for build-arg accounting)."""
    lx = _Lexer(word, env, escape)
    try:
        lx.word()
    except InvalidArgument:
        pass
    return lx.used

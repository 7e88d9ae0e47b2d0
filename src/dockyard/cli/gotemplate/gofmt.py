"""Go's ``fmt`` and ``encoding/json`` output for template values: ``%v`` (what an action
prints), ``print``/``println``, the ``printf`` verbs, ``strconv.Quote``, and the JSON
encoder behind Docker's ``json`` function."""

from __future__ import annotations

import math
from typing import Any

from dockyard.cli.gotemplate.quote import _printable, go_quote
from dockyard.cli.gotemplate.values import GoNil, GoStruct, StructDict, type_name

# --------------------------------------------------------------------------- floats


def _digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(f) and the decimal point position
    (strconv's d.d and d.dp): 1234.5 -> ("12345", 4); zero has no digits."""
    from decimal import Decimal

    sign, digs, exp = Decimal(repr(abs(f))).as_tuple()
    s = "".join(map(str, digs)).lstrip("0")
    if not s:
        return "", 0
    dp = len(digs) + int(exp) - (len(digs) - len("".join(map(str, digs)).lstrip("0")))
    return s.rstrip("0"), dp


def _round_digits(f: float, nd: int, mode: str) -> tuple[str, int]:
    """strconv's rounding of the exact binary value: ``mode`` "e" keeps ``nd`` significant
    digits, "f" keeps ``nd`` digits after the point. Trailing zeros are dropped."""
    from decimal import ROUND_HALF_EVEN, Context, Decimal

    d = Decimal(abs(f))
    if d == 0:
        return "", 0
    ctx = Context(prec=1200, Emin=-2000, Emax=2000)  # a float64 is exact in ~770 digits
    q = Decimal(1).scaleb(d.adjusted() - nd + 1 if mode == "e" else -nd, ctx)
    sign, digs, exp = d.quantize(q, rounding=ROUND_HALF_EVEN, context=ctx).as_tuple()
    s = "".join(map(str, digs))
    dp = len(s) + int(exp)
    s = s.lstrip("0")
    return s.rstrip("0"), dp


def _fmt_e(digits: str, dp: int, prec: int, upper: bool = False) -> str:
    """strconv fmtE: one digit, ``prec`` more after the point, a 2+ digit exponent."""
    ds = (digits or "0").ljust(prec + 1, "0")[: prec + 1]
    out = ds[0] + ("." + ds[1:] if prec > 0 else "")
    exp = dp - 1 if digits else 0
    return out + ("E" if upper else "e") + ("-" if exp < 0 else "+") + f"{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    """strconv fmtF: the integer part, then ``prec`` digits after the point."""
    ip = digits[:dp].ljust(dp, "0") if dp > 0 else "0"
    frac = "".join(digits[j] if 0 <= j < len(digits) else "0" for j in range(dp, dp + prec))
    return ip + ("." + frac if prec > 0 else "")


def format_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(f, verb, prec, 64) for verbs e E f g G."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = math.copysign(1.0, f) < 0
    upper = verb in "EG"
    v = verb.lower()
    if prec < 0:
        digits, dp = _digits(f)
    if v == "f":
        if prec >= 0:
            digits, dp = _round_digits(f, prec, "f")
        body = _fmt_f(digits, dp, prec if prec >= 0 else max(len(digits) - dp, 0))
    elif v == "e":
        if prec >= 0:
            digits, dp = _round_digits(f, prec + 1, "e")
        body = _fmt_e(digits, dp, prec if prec >= 0 else max(len(digits) - 1, 0), upper)
    else:  # g
        if prec < 0:
            eprec = 6
        else:
            p = prec or 1
            digits, dp = _round_digits(f, p, "e")
            eprec = p
            if eprec > len(digits) and len(digits) >= dp:
                eprec = len(digits)
        exp = dp - 1
        if exp < -4 or exp >= eprec:
            body = _fmt_e(digits, dp, max(len(digits) - 1, 0), upper)
        else:
            body = _fmt_f(digits, dp, max(len(digits) - dp, 0))
    return ("-" if neg else "") + body


def json_float(f: float) -> str:
    """encoding/json's float64: %f-style between 1e-6 and 1e21, else %e without a padded
    exponent."""
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        s = format_float(f, "e")
        mant, _, exp = s.partition("e")
        sign, digits = exp[0], exp[1:].lstrip("0") or "0"
        return f"{mant}e{sign}{digits}"
    return format_float(f, "f")


# --------------------------------------------------------------------------- %v


def format_v(v: Any, top: bool = True) -> str:
    """fmt's %v; at the top of an action an invalid value prints ``<no value>``."""
    if v is None:
        return "<no value>" if top else "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, StructDict):
        return "{" + " ".join(format_v(x, False) for x in v.values()) + "}"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{format_v(v[k], False)}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(format_v(x, False) for x in v) + "]"
    if isinstance(v, GoNil):
        return {"slice": "[]", "map": "map[]"}.get(v.kind, "<nil>")
    if isinstance(v, GoStruct):
        return "&{" + " ".join(f"{x}" for x in v.marshal().values()) + "}"
    return str(v)


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    prev_string = True
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_v(a, False))
        prev_string = is_string
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    return " ".join(format_v(a, False) for a in args) + "\n"


# --------------------------------------------------------------------------- printf


class _Spec:
    __slots__ = ("minus", "plus", "sharp", "space", "zero", "width", "prec")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None

    def pad(self, s: str, numeric: bool = False, zero: bool = True) -> str:
        if self.width is None or len(s) >= self.width:
            return s
        n = self.width - len(s)
        if self.minus or not zero:
            return (s + " " * n) if self.minus else (" " * n + s)
        if self.zero and numeric:
            sign = s[0] if s[:1] in "+- " and s else ""
            return sign + "0" * n + s[len(sign) :]
        if self.zero and not numeric:
            return "0" * n + s
        return " " * n + s


def _bad(verb: str, v: Any, sp: _Spec) -> str:
    """fmt's badVerb: the value printed with %v and the same flags."""
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(v)}={_fmt_value(v, 'v', sp, True)})"


def _rune(n: int) -> str:
    """The rune ``n`` as fmt's %c and %q write it: U+FFFD for what is not a code point (a
    surrogate, a negative or too large number), as utf8.AppendRune and QuoteRune do."""
    return chr(n) if 0 <= n <= 0x10FFFF and not 0xD800 <= n <= 0xDFFF else "\ufffd"


def _fmt_int(n: int, verb: str, sp: _Spec) -> str:
    if verb == "c":
        return sp.pad(_rune(n))
    if verb == "q":
        return sp.pad(go_quote(_rune(n), "'", ascii_only=sp.plus))
    if verb == "U":
        s = f"U+{n & 0xFFFFFFFFFFFFFFFF:04X}"  # fmtUnicode works on the uint64
        if sp.sharp and 0 <= n <= 0x10FFFF and _printable(chr(n)):
            s += f" '{chr(n)}'"
        return sp.pad(s)
    base = {"d": 10, "v": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}[verb]
    a = abs(n)
    spec = {10: "d", 2: "b", 8: "o", 16: "x" if verb == "x" else "X"}[base]
    digits = format(a, spec)
    if sp.prec is not None:
        if sp.prec == 0 and a == 0:
            digits = ""
        digits = digits.rjust(sp.prec, "0")
    prefix = ""
    if verb == "O":
        prefix = "0o"
    elif sp.sharp:
        prefix = {2: "0b", 8: "0" if not digits.startswith("0") else "", 16: "0" + verb}.get(
            base, ""
        )
    sign = "-" if n < 0 else "+" if sp.plus else " " if sp.space else ""
    body = prefix + digits
    if sp.zero and not sp.minus and sp.prec is None and sp.width is not None:
        body = body.rjust(sp.width - len(sign), "0")
    # zero padding was done above, as a precision; fmtInteger pads the rest with spaces
    return sp.pad(sign + body, zero=False)


def _hex_float(f: float, upper: bool) -> str:
    """strconv's 'x' format with the shortest mantissa: 1.5 -> 0x1.8p+00."""
    if f == 0:
        s = "0x0p+00"
    else:
        # Go normalises subnormals too (0x1p-1023, where float.hex says 0x0.8p-1022): the
        # mantissa is 1.xxx, its 52 fraction bits exact (m * 2 - 1 is in [0, 1)).
        m, e = math.frexp(abs(f))
        digits = f"{int((m * 2 - 1) * (1 << 52)):013x}".rstrip("0")
        mant = "1." + digits if digits else "1"
        e -= 1
        s = f"0x{mant}p{'-' if e < 0 else '+'}{abs(e):02d}"
    s = ("-" if math.copysign(1.0, f) < 0 else "") + s
    return s.upper() if upper else s


def _fmt_float(f: float, verb: str, sp: _Spec) -> str:
    if verb in "xX" and sp.prec is None and not (math.isinf(f) or math.isnan(f)):
        s = _hex_float(f, verb == "X")
        if not s.startswith("-") and (sp.plus or sp.space):
            s = ("+" if sp.plus else " ") + s
        return sp.pad(s)
    v = {"v": "g", "F": "f"}.get(verb, verb)
    prec = sp.prec if sp.prec is not None else (6 if v in "fFeE" else -1)
    s = format_float(f, v, prec)
    if sp.sharp and v in "gG" and "." not in s and "e" not in s.lower():
        s += "."
    if not s.startswith("-"):
        if sp.plus:
            s = "+" + s
        elif sp.space:
            s = " " + s
    if s.lstrip("+-") in ("Inf", "NaN"):
        return sp.pad(s)
    return sp.pad(s, numeric=True)


def _fmt_str(s: str, verb: str, sp: _Spec) -> str:
    if verb in "sv":
        if sp.prec is not None:
            s = s[: sp.prec]
        return sp.pad(s)
    if verb == "q":
        if sp.prec is not None:
            s = s[: sp.prec]
        if sp.sharp and "`" not in s and all(_printable(c) or c == "\t" for c in s):
            return sp.pad("`" + s + "`")
        return sp.pad(go_quote(s, ascii_only=sp.plus))
    # x / X: hex of the UTF-8 bytes
    data = s.encode("utf-8", "surrogateescape")
    if sp.prec is not None:
        data = data[: sp.prec]
    h = data.hex() if verb == "x" else data.hex().upper()
    if sp.space:
        pairs = [h[i : i + 2] for i in range(0, len(h), 2)]
        if sp.sharp:
            pairs = ["0" + verb + p for p in pairs]
        h = " ".join(pairs)
    elif sp.sharp and h:
        h = "0" + verb + h
    return sp.pad(h)


def _fmt_value(v: Any, verb: str, sp: _Spec, top: bool) -> str:
    if verb == "T":
        return sp.pad(type_name(v))
    if v is None:
        # a nil argument is a bad verb for all but %v; a nil inside a slice or map is "<nil>"
        if not top:
            return "<nil>"
        return sp.pad("<nil>") if verb == "v" else _bad(verb, v, sp)
    if isinstance(v, bool):
        if verb in "tv":
            return sp.pad("true" if v else "false")
        return _bad(verb, v, sp)
    if isinstance(v, int):
        if verb in "bcdoOqxXUv":
            return _fmt_int(v, verb, sp)
        return _bad(verb, v, sp)
    if isinstance(v, float):
        if verb in "veEfFgGxX":
            return _fmt_float(v, verb, sp)
        return _bad(verb, v, sp)
    if isinstance(v, str):
        if verb in "svqxX":
            return _fmt_str(v, verb, sp)
        return _bad(verb, v, sp)
    if isinstance(v, GoNil):
        if v.kind == "ptr":
            return sp.pad("<nil>") if verb == "v" else _bad(verb, v, sp)
        return sp.pad("[]" if v.kind == "slice" else "map[]")
    if isinstance(v, StructDict):
        return "{" + " ".join(_fmt_value(x, verb, sp, False) for x in v.values()) + "}"
    if isinstance(v, dict):
        inner = " ".join(
            f"{_fmt_value(k, verb, sp, False)}:{_fmt_value(v[k], verb, sp, False)}"
            for k in sorted(v)
        )
        return "map[" + inner + "]"
    if isinstance(v, list):
        return "[" + " ".join(_fmt_value(x, verb, sp, False) for x in v) + "]"
    return sp.pad(format_v(v, False))


def sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf for the verbs templates use, with Go's error strings (``%!d(string=x)``,
    ``%!s(MISSING)``, ``%!(EXTRA ...)``)."""
    out: list[str] = []
    i, n, argn = 0, len(fmt), 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        sp = _Spec()
        while i < n and fmt[i] in "+-# 0":
            c = fmt[i]
            if c == "+":
                sp.plus = True
            elif c == "-":
                sp.minus = True
                sp.zero = False
            elif c == "#":
                sp.sharp = True
            elif c == " ":
                sp.space = True
            elif not sp.minus:
                sp.zero = True
            i += 1
        if i < n and fmt[i] == "*":
            i += 1
            if (
                argn < len(args)
                and isinstance(args[argn], int)
                and not isinstance(args[argn], bool)
            ):
                sp.width = args[argn]
                if sp.width < 0:
                    sp.minus, sp.width = True, -sp.width
            else:
                out.append("%!(BADWIDTH)")
            argn += 1
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > start:
                sp.width = int(fmt[start:i])
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if argn < len(args) and isinstance(args[argn], int):
                    sp.prec = args[argn] if args[argn] >= 0 else None
                else:
                    out.append("%!(BADPREC)")
                argn += 1
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                sp.prec = int(fmt[start:i] or 0)
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argn >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argn]
        argn += 1
        if sp.minus:
            sp.zero = False
        out.append(_fmt_value(arg, verb, sp, True))
    if argn < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{type_name(a)}={format_v(a, False)}" for a in args[argn:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# --------------------------------------------------------------------------- JSON


def _json_str(s: str, escape_html: bool) -> str:
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif o < 0x20 or escape_html and c in "<>&" or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:  # invalid UTF-8 becomes U+FFFD
            out.append("\ufffd")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def to_json(v: Any, escape_html: bool = False) -> str:
    """encoding/json, compact: map keys sorted, struct fields in their order, Go's floats
    and escapes. Docker's ``json`` turns HTML escaping off; its list contexts marshal
    themselves with it on."""
    if v is None or isinstance(v, GoNil):
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _json_str(v, escape_html)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return json_float(v)
    if isinstance(v, StructDict):
        items = v.items()
    elif isinstance(v, dict):
        items = sorted(v.items())  # type: ignore[assignment]
    elif isinstance(v, list):
        return "[" + ",".join(to_json(x, escape_html) for x in v) + "]"
    elif isinstance(v, GoStruct):
        # MarshalJSON goes through json.Marshal, which escapes HTML whatever the caller says.
        return to_json(v.marshal(), True)
    else:
        return _json_str(str(v), escape_html)
    return (
        "{"
        + ",".join(f"{_json_str(k, escape_html)}:{to_json(x, escape_html)}" for k, x in items)
        + "}"
    )

"""Go's strconv.Quote and unicode.IsPrint: ps' COMMAND column and the ``%q`` verb."""

from __future__ import annotations


def _printable(c: str) -> bool:
    """unicode.IsPrint: letters, marks, numbers, punctuation, symbols and ASCII space."""
    if c < "\x7f":
        return c >= " "
    import unicodedata  # only for non-ASCII: ps quotes every COMMAND through here

    return unicodedata.category(c)[0] in "LMNPS"


_ESC = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
}


def go_quote(s: str, quote: str = '"', ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteToASCII / QuoteRune with ``quote="'"``)."""
    out = [quote]
    for c in s:
        o = ord(c)
        if c == quote or c == "\\":
            out.append("\\" + c)
        elif 0xDC80 <= o <= 0xDCFF:  # a raw byte kept by surrogateescape
            out.append(f"\\x{o - 0xDC00:02x}")
        elif _printable(c) and not (ascii_only and o >= 0x80):
            out.append(c)
        elif c in _ESC:
            out.append(_ESC[c])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append(quote)
    return "".join(out)

"""Go's ``text/tabwriter`` as Docker's CLI configures it (formatter.go:
``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``): tab-terminated cells, aligned per column
block, each column as wide as its widest cell plus 3 and at least 10; a line's last cell is
not part of any column. Widths count runes, as Go does."""

from __future__ import annotations


def _format(lines: list[list[str]], minwidth: int, padding: int) -> list[str]:
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            parts = []
            for j, cell in enumerate(lines[i]):
                parts.append(cell)
                if j < len(widths):
                    parts.append(" " * (widths[j] - len(cell)))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            # a column block starts here: every following line that has this column
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return out


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Align ``text`` (lines of tab-separated cells) as Go's tabwriter with flags 0 would.
    A line of one cell flushes, so the blocks after it are aligned on their own."""
    rows = [line.split("\t") for line in text.split("\n")]
    result: list[str] = []
    block: list[list[str]] = []
    for i, cells in enumerate(rows):
        block.append(cells)
        if len(cells) == 1 and i < len(rows) - 1:
            result.extend(_format(block, minwidth, padding))
            block = []
    result.extend(_format(block, minwidth, padding))
    return "\n".join(result)

"""Go's text/tabwriter, as docker's tables use it: elastic tabstops over cells.

docker aligns every table with `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`,
so the spacing of `docker images` and friends comes from the rules below;
matching them is what makes our tables line up character for character.

The rules, as Go's tabwriter applies them:

- a cell is the text up to a tab ('\\t', or the soft tab '\\v'); lines end at
  '\\n' or '\\f'. The text after the last tab of a line is a cell too, but it
  belongs to no column: it is printed as is, never padded;
- cell j of consecutive lines that all have a tab-terminated cell j forms a
  column block; a line without that cell ends the block, so a later line
  starts a new block with its own width (this is why a line without tabs
  resets the whole table);
- a block's width is max(minwidth, widest cell + padding), counted in code
  points (Go counts runes, not display width);
- '\\f' ends every block, like a line with no tabs, and prints as '\\n'.

Go's flags (AlignRight, DiscardEmptyColumns, FilterHTML, Debug) and Escape
sequences are not implemented: docker passes flags 0 and no escapes.
"""

from __future__ import annotations

__all__ = ["tabwrite"]


def _split_cells(section: str, terminated: bool) -> list[list[str]]:
    """The lines of a section as lists of cells; the last cell of each line is its tail.

    A terminated line (by '\n', or '\f' when `terminated`) always ends with a
    maybe empty tail cell, so its last tab-terminated cell does take part in a
    column. The final unterminated line only gets a tail cell if it has text:
    that is how Go's Flush treats an incomplete last cell.
    """
    raw_lines = section.split("\n")
    lines = []
    for i, raw in enumerate(raw_lines):
        cells = raw.replace("\v", "\t").split("\t")
        if not terminated and i == len(raw_lines) - 1 and cells[-1] == "":
            cells.pop()
        lines.append(cells)
    return lines


class _Formatter:
    def __init__(self, lines: list[list[str]], minwidth: int, tabwidth: int, padding: int,
                 padchar: str) -> None:
        self.lines = lines
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.widths: list[int] = []   # widths of the columns left of the current one
        self.out: list[str] = []

    def format(self, line0: int, line1: int) -> None:
        """Print lines[line0:line1], whose columns left of len(widths) are already sized.

        Scan column `len(widths)`: each run of lines having a cell there is a
        block; size it, then recurse for the next column inside that block.
        """
        column = len(self.widths)
        this = line0
        while this < line1:
            if column >= len(self.lines[this]) - 1:
                this += 1
                continue
            self.write_lines(line0, this)   # lines above the block have no cell in this column
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(self.lines[this]) - 1:
                width = max(width, len(self.lines[this][column]) + self.padding)
                this += 1
            self.widths.append(width)
            self.format(line0, this)
            self.widths.pop()
            line0 = this
        self.write_lines(line0, line1)

    def write_lines(self, line0: int, line1: int) -> None:
        for i in range(line0, line1):
            for j, cell in enumerate(self.lines[i]):
                self.out.append(cell)
                if j < len(self.widths):
                    self.out.append(self.pad(len(cell), self.widths[j]))
            if i + 1 < len(self.lines):
                self.out.append("\n")

    def pad(self, textw: int, cellw: int) -> str:
        if self.padchar != "\t":
            return self.padchar * (cellw - textw)
        # Tab padding: the column ends at the next multiple of tabwidth.
        if self.tabwidth == 0:
            return ""
        cellw = -(-cellw // self.tabwidth) * self.tabwidth
        return "\t" * -(-(cellw - textw) // self.tabwidth)


def tabwrite(text: str, minwidth: int = 10, tabwidth: int = 1, padding: int = 3,
             padchar: str = " ") -> str:
    """Align the tab-terminated cells of `text` the way Go's tabwriter.Writer does.

    The defaults are docker's table settings. Trailing text of each line is
    copied unchanged and a final newline is kept.
    """
    if minwidth < 0 or tabwidth < 0 or padding < 0:
        raise ValueError("negative minwidth, tabwidth, or padding")
    # A formfeed ends all columns, as if the text before it were flushed alone.
    sections = text.split("\f")
    out = []
    for i, section in enumerate(sections):
        lines = _split_cells(section, terminated=i < len(sections) - 1)
        formatter = _Formatter(lines, minwidth, tabwidth, padding, padchar)
        formatter.format(0, len(formatter.lines))
        out.append("".join(formatter.out))
    return "\n".join(out)

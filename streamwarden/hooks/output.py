"""A hook's stdout/stderr in the log, bounded: whole lines, at most so many, none too long.

The runner reads each pipe in chunks (a command may print a 1 MB line, or never a newline) and
feeds them here; what comes out is what gets logged. Whatever is over the budget is counted,
so the log says how much was left out instead of silently dropping it. Pure: no pipes.
"""

from __future__ import annotations

MAX_LINE = 500  # characters of one line kept; the rest is cut and marked


class OutputBudget:
    """Lines to log from one run's output (both pipes share the budget)."""

    def __init__(self, max_lines: int, max_line: int = MAX_LINE):
        self.max_lines = max_lines
        self.max_line = max_line
        self.logged = 0
        self.skipped = 0

    def take(self, line: str) -> str | None:
        """`line` as it should be logged (cut if long), or None when over the budget."""
        if self.logged >= self.max_lines:
            self.skipped += 1
            return None
        self.logged += 1
        if len(line) > self.max_line:
            return line[:self.max_line] + "… (cut)"
        return line


class LineSplitter:
    """Bytes in, decoded lines out. A line longer than `limit` bytes is handed out cut at the
    limit and the rest of it dropped up to its newline, so a pipe never holds much memory."""

    def __init__(self, limit: int = 4 * MAX_LINE):
        self.limit = limit
        self._pending = bytearray()
        self._discarding = False  # a cut line was handed out; skip to its end

    def feed(self, chunk: bytes) -> list[str]:
        *complete, partial = chunk.split(b"\n")
        lines = []
        for piece in complete:
            if self._discarding:
                self._discarding = False
                continue
            self._add(piece)
            lines.append(self._take())
        if not self._discarding:
            self._add(partial)
            if len(self._pending) >= self.limit:
                lines.append(self._take())
                self._discarding = True
        return lines

    def close(self) -> list[str]:
        """End of the pipe: a last line without a newline, if any."""
        return [self._take()] if self._pending else []

    def _add(self, data: bytes) -> None:
        self._pending += data[:self.limit - len(self._pending)]

    def _take(self) -> str:
        text = self._pending.decode("utf-8", "replace").rstrip("\r")
        self._pending.clear()
        return text

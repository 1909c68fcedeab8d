"""Progress on stderr for the `xmlconv` commands: a bar (tqdm) when stderr is a terminal,
else a few plain lines ("xmlconv: upload 50% (1.0 MiB of 2.0 MiB)"), or nothing (--quiet).

Each reporter is a `progress(done, total)` callable as the Client calls it, and a context
manager that ends its bar or line; `stop(outcome)` ends it with what happened instead of an
amount ("convert failed", "convert cancelled": no percent of a job that has none to show).
"""

from __future__ import annotations

from typing import TextIO

STEPS = (25, 50, 75)  # plain lines: one as each quarter is passed, one at the end


def size(count: float) -> str:
    """1536 → '1.5 KiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


class Silent:
    def __call__(self, done: float, total: float | None) -> None:
        pass

    def stop(self, outcome: str) -> None:
        pass

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Lines(Silent):
    """Plain lines for a log or a pipe."""

    def __init__(self, label: str, stream: TextIO, in_bytes: bool) -> None:
        self.label = label
        self.stream = stream
        self.in_bytes = in_bytes
        self.done: float = 0
        self.total: float | None = None
        self.passed = 0  # how many of STEPS were printed

    def _amount(self, value: float) -> str:
        return size(value) if self.in_bytes else f"{value:.0f}%"

    def __call__(self, done: float, total: float | None) -> None:
        self.done, self.total = done, total
        if not total:
            return
        percent = 100.0 * done / total
        while self.passed < len(STEPS) and percent >= STEPS[self.passed]:
            step = STEPS[self.passed]
            self.passed += 1
            if percent < 100:
                extra = (f" ({size(done)} of {size(total)})" if self.in_bytes else "")
                self._print(f"{step}%{extra}")

    def stop(self, outcome: str) -> None:
        self._print(outcome)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None and self.in_bytes:
            self._print(f"done ({size(self.done)})")
        elif exc_type is None:
            self._print("done")

    def _print(self, text: str) -> None:
        self.stream.write(f"xmlconv: {self.label} {text}\n")
        self.stream.flush()


class Bar(Silent):
    """A tqdm bar on a terminal: bytes for transfers, percent for the conversion."""

    def __init__(self, label: str, stream: TextIO, in_bytes: bool) -> None:
        from tqdm import tqdm

        self.in_bytes = in_bytes
        options = ({"unit": "B", "unit_scale": True, "unit_divisor": 1024} if in_bytes else
                   {"total": 100.0, "bar_format": "{desc}: {percentage:3.0f}%|{bar}| "
                    "[{elapsed}<{remaining}]"})
        self.bar = tqdm(desc=label, file=stream, leave=True, dynamic_ncols=True, **options)

    def __call__(self, done: float, total: float | None) -> None:
        if self.in_bytes and total and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def stop(self, outcome: str) -> None:
        self.bar.bar_format = f"{{desc}}: {outcome}"
        self.bar.refresh()

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def reporter(label: str, stream: TextIO, *, in_bytes: bool, quiet: bool = False) -> Silent:
    """The reporter for one phase ("upload", "convert", "download") on `stream`."""
    if quiet:
        return Silent()
    if stream.isatty():
        return Bar(label, stream, in_bytes)
    return Lines(label, stream, in_bytes)

"""How the magics show runs, lists and deploys in a notebook: HTML with a plain-text twin.

Each view is a small object with ``_repr_html_`` and ``__repr__``, so Lab and
Voila render a table while a terminal, ``nbconvert --to markdown`` or a test
reads text. A run's view is refreshed in place (an IPython display handle)
until the run ends or waits for a human.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: statuses after which a run's view stops refreshing (waiting: until someone answers)
SETTLED = frozenset({"succeeded", "failed", "cancelled", "timed_out", "waiting"})
_COLOURS = {"succeeded": "#1a7f37", "failed": "#cf222e", "timed_out": "#cf222e", "cancelled": "#6e7781"}


def _short(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


class Table:
    """Rows of text under a caption; rendered as an HTML table or aligned text."""

    def __init__(self, caption: str, header: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> None:
        self.caption = caption
        self.header = list(header)
        self.rows = [[str(cell) for cell in row] for row in rows]
        self.empty = empty

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        if not self.rows:
            return self.empty
        widths = [max(len(r[i]) for r in [self.header, *self.rows]) for i in range(len(self.header))]
        lines = [self.caption, "  ".join(h.ljust(w) for h, w in zip(self.header, widths, strict=True)).rstrip()]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(self.empty)}</p>"
        head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        return (
            f"<table><caption>{html.escape(self.caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


def _duration(run: dict[str, Any]) -> str:
    from datetime import datetime

    started, finished = run.get("started_at"), run.get("finished_at")
    if not started or not finished:
        return ""
    seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    return f"{seconds:.1f} s"


class RunView:
    """One execution: its status, how long it took, its outputs or its error."""

    def __init__(self, run: dict[str, Any], title: str) -> None:
        self.run = run
        self.title = title

    def lines(self) -> list[tuple[str, str]]:
        run = self.run
        found = [("status", str(run["status"])), ("execution", str(run["id"]))]
        if _duration(run):
            found.append(("took", _duration(run)))
        if run.get("waiting_for"):
            found.append(("waiting for", _short(run["waiting_for"])))
        if run.get("error"):
            error = run["error"]
            found.append(("error", f"{error.get('kind', 'error')}: {error.get('message', '')}"))
        for name, value in (run.get("outputs") or {}).items():
            found.append((f"output {name}", _short(value, 400)))
        return found

    def __repr__(self) -> str:
        return "\n".join([self.title, *(f"  {k}: {v}" for k, v in self.lines())])

    def _repr_html_(self) -> str:
        colour = _COLOURS.get(str(self.run["status"]), "#9a6700")
        rows = "".join(
            f'<tr><th scope="row" style="text-align:left">{html.escape(k)}</th>'
            f'<td style="text-align:left">{html.escape(v)}</td></tr>'
            for k, v in self.lines()
        )
        return (
            f'<div role="status" aria-live="polite"><strong>{html.escape(self.title)}</strong> '
            f'<span style="color:{colour}">● {html.escape(str(self.run["status"]))}</span>'
            f"<table>{rows}</table></div>"
        )


class Text:
    """A few lines of text (a deploy's summary), shown as preformatted HTML too."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


class Run(dict[str, Any]):
    """An execution as the API describes it (a dict), shown as its :class:`RunView` unless already on screen."""

    def __init__(self, run: dict[str, Any], title: str, *, shown: bool = False) -> None:
        super().__init__(run)
        self.title = title
        self.shown = shown

    def _ipython_display_(self) -> None:
        if not self.shown:
            show(RunView(self, self.title))


def follow(
    run: dict[str, Any],
    fetch: Callable[[str], dict[str, Any]],
    title: str,
    *,
    timeout: float,
    every: float = 0.5,
) -> Run:
    """Show ``run`` and refresh it in place until it settles (or ``timeout`` passes); the last state seen."""
    handle = show(RunView(run, title), display_id=True)
    deadline = time.monotonic() + timeout
    while str(run["status"]) not in SETTLED and time.monotonic() < deadline:
        time.sleep(every)
        run = fetch(str(run["id"]))
        if handle is not None:
            handle.update(RunView(run, title))
    return Run(run, title, shown=True)


def show(value: Any, **options: Any) -> Any:
    """IPython's ``display`` (untyped), typed once here."""
    from IPython.display import display

    return display(value, **options)  # type: ignore[no-untyped-call]


def execution_view(run: dict[str, Any], client: Any) -> Any | None:
    """The execution view widget (``orchestrator_widgets``) for ``run``, where the widgets are installed."""
    try:
        from orchestrator_widgets import ExecutionView
    except ImportError:
        return None
    return ExecutionView(str(run["id"]), client=client)

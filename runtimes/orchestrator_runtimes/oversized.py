"""A notebook output too large for one line of the zygote's protocol, replaced by a note before it is sent.

A run's child (:mod:`.zygote`) sends each Jupyter message as one JSON line, and
the worker reads at most a fixed number of bytes a line (a run's code can
write to its own connection: an endless line must not exhaust the worker's
memory). Streams are sent in chunks well below it (:mod:`.ipyshell`); a single
display message is not: a Plotly figure with its data or a large image is one
message of tens of MiB. Such a message is not sent whole: its data is replaced
by a ``text/plain`` note naming its size and the limit (the cell, and the run,
go on), as the worker's own cap on outputs leaves a note where it cut
(``orchestrator_ext.engine.notebooks.TRUNCATED``).
"""

from __future__ import annotations

import json
from typing import Any

#: what replaces an output too large to send
NOTE = "[output too large: {size} bytes, over the limit of {limit} bytes one notebook output may have; not kept]"
#: the messages whose ``data`` (a MIME bundle) is replaced by the note
DISPLAYS = frozenset({"display_data", "execute_result", "update_display_data"})
#: what is kept of a text that is cut (a stream, an error's message, a traceback's lines)
KEPT = 4096


def fit(line: bytes, limit: int) -> bytes:
    """``line`` (one JSON message and its newline) when it is at most ``limit`` bytes, else the same message
    with what made it large replaced by :data:`NOTE`: never more than ``limit`` bytes (for a ``limit`` of at
    least a few KiB)."""
    if len(line) <= limit:
        return line
    note = NOTE.format(size=len(line), limit=limit)
    try:
        message = json.loads(line)
    except ValueError:  # not ours to judge: the worker refuses what is not a message
        return line
    if not isinstance(message, dict):
        return line
    return (json.dumps(_shrunk(message, note), allow_nan=False) + "\n").encode()[:limit]


def _shrunk(message: dict[str, Any], note: str) -> dict[str, Any]:
    if "reply" in message:  # the cell's execute_reply: its status kept, its payloads (pages, expressions) not
        reply = message["reply"] if isinstance(message["reply"], dict) else {}
        small = {key: reply[key] for key in ("status", "execution_count") if key in reply}
        return {"reply": {**small, **_error_fields(reply), "payload": [], "user_expressions": {}}}
    content = _mapping(message.get("content"))
    msg_type = message.get("msg_type")
    header = _mapping(message.get("header"))
    shrunk: dict[str, Any]
    if msg_type in DISPLAYS:
        kept: dict[str, Any] = {key: content[key] for key in ("execution_count", "transient") if key in content}
        shrunk = {**kept, "data": {"text/plain": note}, "metadata": {}}
    elif msg_type == "error":
        shrunk = {**_error_fields(content), "traceback": [note]}
    elif msg_type == "stream":
        shrunk = {"name": content.get("name", "stdout"), "text": str(content.get("text", ""))[:KEPT] + "\n" + note}
    else:  # anything else (a comm message): its note where the output goes
        msg_type, shrunk = "stream", {"name": "stderr", "text": note + "\n"}
    return {"msg_type": msg_type, "content": shrunk, "header": {**header, "msg_type": msg_type}}


def _error_fields(content: dict[str, Any]) -> dict[str, Any]:
    """An error's name and the start of its message (what says which error it was)."""
    return {key: str(content[key])[:KEPT] for key in ("ename", "evalue") if key in content}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

"""A notebook output larger than one line of the zygote's protocol (a large image, a Plotly figure with its
data) does not end the run as a dead kernel: the child sends a note naming its size and the limit instead,
and the cells after it run. Outputs below the limit arrive whole, as on a kernel."""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator_runtimes.oversized import fit

from tests.conftest import Api
from tests.engine.conftest import notebook, who

#: a 20 MB PNG-typed payload (base64's alphabet: as a real image's data travels), then a 20 MB HTML repr
LARGE = """
from IPython.display import display
display({"image/png": "iVBORw0K" * 2_500_000}, raw=True)
"""
LARGE_RESULT = """
class Figure:
    def _repr_html_(self):
        return "<div>" + "x" * 20_000_000 + "</div>"
Figure()
"""
#: 3 MB: under the line limit, kept whole (as a kernel keeps it)
MEDIUM = 'display({"image/png": "iVBORw0K" * 375_000}, raw=True)'


async def test_a_20_mb_display_is_a_note_naming_the_limit_and_the_run_goes_on(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook(LARGE, LARGE_RESULT, MEDIUM, "print('after')"))
    async with workers(kernel_pool_size=1):
        run = await run_to_end(user, workflow["id"], within=120)
    assert run["status"] == "succeeded", run["error"]
    cells = (await api("GET", "executions", run["id"], "notebook", user=user)).json["cells"]
    (image,) = cells[0]["outputs"]
    assert image["output_type"] == "display_data"
    note = image["data"]["text/plain"]
    note = "".join(note) if isinstance(note, list) else note
    assert re.search(r"output too large: 200\d{5} bytes", note), note
    assert f"limit of {16 * 1024 * 1024 - 1024} bytes" in note
    (result,) = cells[1]["outputs"]
    assert result["output_type"] == "execute_result"
    assert "output too large" in str(result["data"]["text/plain"])
    assert result["execution_count"] == cells[1]["execution_count"]
    (medium,) = cells[2]["outputs"]
    assert len(medium["data"]["image/png"]) == 3_000_000
    assert "after" in "".join(cells[3]["outputs"][0]["text"])


def test_a_message_within_the_limit_is_sent_as_it_is_and_a_longer_one_never_over_it() -> None:
    small = (json.dumps({"msg_type": "display_data", "content": {"data": {"text/plain": "hi"}}}) + "\n").encode()
    assert fit(small, 1 << 10) is small
    for msg_type, content in [
        ("display_data", {"data": {"image/png": "A" * 100_000}, "metadata": {}, "transient": {"display_id": "d"}}),
        ("error", {"ename": "ValueError", "evalue": "v" * 100_000, "traceback": ["t" * 100_000]}),
        ("stream", {"name": "stdout", "text": "s" * 100_000}),
        ("comm_msg", {"data": {"blob": "c" * 100_000}}),
    ]:
        message = {"msg_type": msg_type, "content": content, "header": {"msg_type": msg_type}}
        line = (json.dumps(message) + "\n").encode()
        sent = fit(line, 16 << 10)
        assert len(sent) <= 16 << 10
        message = json.loads(sent)
        assert f"output too large: {len(line)} bytes, over the limit of {16 << 10} bytes" in json.dumps(message)
        if msg_type == "display_data":
            assert message["content"]["transient"] == {"display_id": "d"}  # a later update still finds it
        if msg_type == "error":
            assert message["content"]["ename"] == "ValueError"
    reply = (json.dumps({"reply": {"status": "ok", "execution_count": 3, "payload": ["p" * 100_000]}}) + "\n").encode()
    assert json.loads(fit(reply, 16 << 10))["reply"]["status"] == "ok"

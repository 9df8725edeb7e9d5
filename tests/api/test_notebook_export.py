"""``GET /executions/{id}/notebook?format=html``: what a run printed, as a page nobody's script runs in.

A notebook's outputs are HTML of its code's making: the export takes scripts and event handlers
out (nbconvert's SanitizeHTML) and serves the page under a sandboxing Content-Security-Policy that
still lets the export's own inline styles render (Chromium checks that, from the same headers).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator_ext.handlers.executions import EXPORT_CSP, notebook_html
from tests.conftest import NOTEBOOK_SPEC, Api

#: what a run can print: a stored script, an image whose error handler runs, and a harmless table
ATTACK_HTML = (
    "<table><tr><td>kept-cell</td></tr></table>"
    "<script>window.__pwned = 'script'</script>"
    "<img src=x onerror=\"window.__pwned = 'onerror'\">"
)


def executed_notebook() -> dict[str, Any]:
    """An executed notebook as papermill writes it: sources as lists of lines, outputs with HTML."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "markdown", "id": "md", "metadata": {}, "source": ["# Report\n", "<script>md()</script>"]},
            {
                "cell_type": "code",
                "id": "out",
                "metadata": {},
                "execution_count": 1,
                "source": ["from IPython.display import HTML\n", "HTML(page)"],
                "outputs": [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"text/html": [ATTACK_HTML], "text/plain": ["<IPython.core.display.HTML object>"]},
                    },
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"application/javascript": ["window.__pwned = 'js'"], "text/plain": ["js"]},
                    },
                ],
            },
        ],
    }


def assert_sanitized(html: str) -> None:
    assert "kept-cell" in html
    assert "__pwned" not in html.replace("window.__pwned = 'script'", "")  # no handler, no JS output
    assert "onerror" not in html
    assert not re.search(r"<script", html, re.IGNORECASE)
    assert "<style" in html  # the export's own styles


async def test_the_html_export_is_sanitized_and_sandboxed(
    api: Api,
    create_agent: Callable[..., Any],
    create_workflow: Callable[..., Any],
    admin_sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    user = f"export-{uuid.uuid4().hex[:6]}"
    agent = await create_agent(user, framework="notebook")
    workflow = await create_workflow(user, agent["id"], spec=NOTEBOOK_SPEC)
    started = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
    assert started.status == 202, started.json
    execution = started.json["id"]
    [(org,)] = admin_sql("SELECT org_id FROM workflow_executions WHERE id = %s", (execution,))
    admin_sql(
        "INSERT INTO execution_notebooks (execution_id, org_id, attempt, content) VALUES (%s, %s, 1, %s::json)",
        (execution, org, json.dumps(executed_notebook())),
    )

    page = await api("GET", "executions", execution, "notebook", user=user, params={"format": "html"})
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    policy = [part.strip() for part in page.headers["Content-Security-Policy"].split(";")]
    assert "sandbox" in policy
    assert not any("allow-scripts" in part for part in policy)
    assert {"default-src 'none'", "style-src 'unsafe-inline'", "img-src data:"} <= set(policy)
    assert_sanitized(page.text)
    # the document itself is unchanged, and still another user's 404
    document = await api("GET", "executions", execution, "notebook", user=user)
    assert document.json["cells"][1]["outputs"][0]["data"]["text/html"] == [ATTACK_HTML]
    assert (
        await api("GET", "executions", execution, "notebook", user="mallory", params={"format": "html"})
    ).status == 404


@pytest.mark.timeout(120)
def test_chromium_renders_the_export_styled_and_runs_nothing() -> None:
    """The export, served with the API's policy, in Debian's Chromium: styled, and no script ran.
    The same page under the policy jupyter-server gives API answers (default-src 'none') is unstyled:
    the check can tell the two apart."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    html = notebook_html(executed_notebook())
    assert_sanitized(html)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            ours = _render(browser, html, EXPORT_CSP)
            unstyled = _render(browser, html, "default-src 'none'")
        finally:
            browser.close()
    assert ours["pwned"] is None
    assert ours["sheets"] > 0, "the export's <style> elements apply"
    assert (ours["fontSize"], ours["cellPadding"]) == ("13px", "5px")  # JupyterLab's theme and cell layout
    assert (unstyled["sheets"], unstyled["fontSize"], unstyled["cellPadding"]) == (0, "", "0px")
    assert not [message for message in ours["console"] if "inline style" in message], ours["console"]


def _render(browser: Any, html: str, policy: str) -> dict[str, Any]:
    """Open ``html`` as if served with ``policy``; what the page computed."""
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    url = "http://127.0.0.1:9/export.html"
    page.route(
        url,
        lambda route: route.fulfill(
            status=200, body=html, headers={"Content-Type": "text/html", "Content-Security-Policy": policy}
        ),
    )
    page.route(re.compile(r"^(?!http://127\.0\.0\.1:9/export\.html$)"), lambda route: route.abort())
    page.goto(url, wait_until="load")
    found = page.evaluate(
        """() => ({
            pwned: window.__pwned ?? null,
            sheets: document.styleSheets.length,
            fontSize: getComputedStyle(document.body).getPropertyValue('--jp-ui-font-size1').trim(),
            cellPadding: getComputedStyle(document.querySelector('.jp-Cell')).padding,
        })"""
    )
    context.close()
    return {**found, "console": console}

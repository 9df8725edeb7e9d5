"""An agno run's inputs: the message, images and files (URLs or ``data:`` URIs), whose session and user.

Images and files reach only models whose integration declares it reads them
(``"modalities": ["text", "image"]`` in its config): anything else is an
``input`` error before a model is called.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ErrorKind, RunError

if TYPE_CHECKING:
    from ..models import ModelEndpoint
    from ..runtime import RunContext

MESSAGE_KEYS = ("message", "input", "prompt")


@dataclass
class Inputs:
    message: str
    images: list[Any]
    files: list[Any]
    session_id: str | None
    user_id: str


def _data_uri(value: str, what: str) -> tuple[bytes, str]:
    match = re.match(r"^data:([\w.+-]+/[\w.+-]+)?(;[^,]*)?,(.*)$", value, re.DOTALL)
    if match is None:
        raise RunError(ErrorKind.INPUT, f"{what} is not a data: URI")
    mime = match[1] or "application/octet-stream"
    try:
        if ";base64" in (match[2] or ""):
            return base64.b64decode(match[3], validate=True), mime
        from urllib.parse import unquote_to_bytes

        return unquote_to_bytes(match[3]), mime
    except (binascii.Error, ValueError) as exc:
        raise RunError(ErrorKind.INPUT, f"{what} is not valid base64: {exc}") from exc


def read_inputs(inputs: Mapping[str, Any], context: RunContext) -> Inputs:
    message: Any = next((inputs[key] for key in MESSAGE_KEYS if inputs.get(key) not in (None, "")), None)
    if message is None:
        raise RunError(ErrorKind.INPUT, "no message: give the agent's message as inputs.message (a string)")
    if not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False, default=str)
    images: list[Any] = []
    raw_images = inputs.get("images") or []
    if not isinstance(raw_images, list):
        raise RunError(ErrorKind.INPUT, "inputs.images must be a list of image URLs or data: URIs")
    from agno.media import File, Image

    for position, image in enumerate(raw_images):
        what = f"inputs.images.{position}"
        if not isinstance(image, str):
            raise RunError(ErrorKind.INPUT, f"{what} must be an image URL or a data: URI")
        if image.startswith("data:"):
            content, mime = _data_uri(image, what)
            images.append(Image(content=content, mime_type=mime, format=mime.rsplit("/", 1)[-1]))
        elif image.startswith(("http://", "https://")):
            images.append(Image(url=image))
        else:
            raise RunError(ErrorKind.INPUT, f"{what} must be an http(s) URL or a data: URI")
    files: list[Any] = []
    raw_files = inputs.get("files") or []
    if not isinstance(raw_files, list):
        raise RunError(ErrorKind.INPUT, "inputs.files must be a list of files ({'name', 'content'} or URLs)")
    attached: list[str] = []
    for position, item in enumerate(raw_files):
        what = f"inputs.files.{position}"
        if isinstance(item, Mapping) and isinstance(item.get("content"), str):
            name = str(item.get("name") or f"file-{position}")
            attached.append(f'<file name="{name}">\n{item["content"]}\n</file>')
        elif isinstance(item, str) and item.startswith(("http://", "https://")):
            files.append(File(url=item))
        elif isinstance(item, str) and item.startswith("data:"):
            content, mime = _data_uri(item, what)
            files.append(File(content=content, mime_type=mime))
        else:
            raise RunError(ErrorKind.INPUT, f"{what} must be {{'name', 'content'}} (text), a URL or a data: URI")
    if attached:
        message = message + "\n\nAttached files:\n" + "\n".join(attached)
    session = inputs.get("session_id")
    user = inputs.get("user_id")
    return Inputs(
        message=message,
        images=images,
        files=files,
        session_id=str(session) if session not in (None, "") else None,
        user_id=str(user) if user not in (None, "") else "default",
    )


def _modalities(context: RunContext, endpoint: ModelEndpoint) -> list[str]:
    config = (context.integrations.get(endpoint.integration) or {}).get("config") or {}
    modalities = config.get("modalities", ["text"])
    return [str(m) for m in modalities] if isinstance(modalities, list) else ["text"]


def check_media(context: RunContext, endpoints: list[ModelEndpoint], read: Inputs) -> None:
    for endpoint in endpoints:
        modalities = _modalities(context, endpoint)
        if read.images and "image" not in modalities:
            raise RunError(
                ErrorKind.INPUT,
                f"the model of the integration '{endpoint.integration}' ({endpoint.model}) takes text only, and "
                f"this run has {len(read.images)} image(s): use a model that reads images and declare it in the "
                'integration\'s config: "modalities": ["text", "image"]',
                integration=endpoint.integration,
            )
        if read.files and "file" not in modalities:
            raise RunError(
                ErrorKind.INPUT,
                f"the model of the integration '{endpoint.integration}' ({endpoint.model}) takes no files: give "
                'text files as {\'name\', \'content\'}, or declare "modalities": ["text", "file"] in the '
                "integration's config for a model that reads them",
                integration=endpoint.integration,
            )

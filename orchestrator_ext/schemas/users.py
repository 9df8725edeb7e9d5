"""The caller's own profile: who they are and where they belong."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from ..security.permissions import Role
from .common import SOURCE_HELP, MemberSource, Name, RequestModel, ResponseModel, Timestamp, as_sent

# A deliberately strict address: a dot-atom local part of at most 64 characters, a dotted host
# name of letters, digits and inner hyphens, a top-level label of letters only. The same two
# regular expressions are in the OpenAPI document (a pattern and an allOf), so both say the same.
_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$"
LOCAL_PART_PATTERN = "^[^@]{1,64}@"
_EMAIL = re.compile(EMAIL_PATTERN[1:-1])  # fullmatch: `$` would also match before a final newline


def check_email(value: str) -> str:
    """Accept a plain ``local@host.tld`` address (local part at most 64 characters)."""
    local, _, _ = value.partition("@")
    if len(local) > 64 or not _EMAIL.fullmatch(value):
        raise ValueError("not a valid email address (expected local@host.tld)")
    return value


Email = Annotated[
    str,
    as_sent(254),
    StringConstraints(strip_whitespace=True, max_length=254),
    AfterValidator(check_email),
    Field(json_schema_extra={"pattern": EMAIL_PATTERN, "allOf": [{"pattern": LOCAL_PART_PATTERN}]}),
]


class UpdateUser(RequestModel):
    """Change the caller's profile: an omitted field stays as it is, ``null`` clears it."""

    display_name: Name | None = Field(default=None, description="1-200 characters; stored encrypted.")
    email: Email | None = Field(default=None, description="A plain address; stored encrypted.")


class DescribeMembership(ResponseModel):
    org_id: uuid.UUID
    name: str
    role: Role
    personal: bool = Field(description="The caller's personal organization (exactly one member).")
    source: MemberSource = Field(description=SOURCE_HELP)
    joined_at: Timestamp = Field(description="When the caller became a member.")


class DescribeUser(ResponseModel):
    id: uuid.UUID
    username: str = Field(description="The subject the authentication layer names the caller by.")
    display_name: str | None
    email: str | None
    created_at: Timestamp
    updated_at: Timestamp
    memberships: list[DescribeMembership] = Field(description="The personal organization first, then by name.")
    platform_admin: bool = Field(
        description="May use the /admin endpoints: a JupyterHub admin, a personal server's owner, "
        "or a name in OrchestratorApp.platform_admins."
    )

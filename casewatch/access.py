"""The doors every write API shares (the ingest API and the DfE CSC API adapter): which source
system a bearer token belongs to, and how deeply a request body nests before it is parsed.

* ``grant_for_token``: the ``IngestGrant`` (``CASEWATCH_INGEST_TOKENS``) whose token was
  presented; every token is compared, in constant time, so the answer's timing does not say how
  much of a token was right.
* ``json_depth``: the nesting depth of a JSON text, found without parsing it, so a body nested
  deeper than a limit is refused before a parser recurses into it.
"""
from __future__ import annotations

import hmac
import re

from casewatch.config import IngestGrant

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def grant_for_token(grants: dict[str, IngestGrant], presented: str | None) -> IngestGrant | None:
    """The grant of the source system whose token was presented, or None (no or an unknown token)."""
    found = None
    candidate = (presented or "").encode("utf-8", errors="replace")
    for grant in grants.values():
        if hmac.compare_digest(candidate, grant.token.encode("utf-8")) and presented:
            found = grant
    return found


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects (strings skipped), without parsing it."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b"", body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest

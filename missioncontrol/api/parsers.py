"""The API's one body parser: JSON in UTF-8, checked before and after parsing.

Before: the body is at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (413
``too_large``), valid UTF-8, and nests at most ``API_MAX_JSON_DEPTH`` arrays
and objects (400 ``invalid``): the depth is counted by a scan of the raw
text, without recursion, so a body nested thousands of levels deep is
refused before Python's JSON decoder could exhaust the stack.

During: a number too large for a float (``1e400``, which Python reads as
infinity and PostgreSQL's JSON refuses) is a 400 ``parse_error``.

After: no string, key or value, anywhere in the document contains a NUL or
an unpaired surrogate (``"\\ud800"``): PostgreSQL refuses the first, UTF-8
cannot encode the second, and a serializer that echoed either in its error
message would fail to render it. The 400's ``errors`` are keyed by the
field, and the message says where inside it as a dotted path (``at
reports.3.message``); the value is never echoed.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers

BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
BAD_TEXT_MESSAGE = "Text may not contain NUL characters or unpaired surrogates."
# A JSON string literal, escapes included; an unterminated one runs to the
# end of the text, so no start position is scanned twice (linear time).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"
    default_detail = "The request body is too large."


class NestingTooDeep(exceptions.APIException):
    status_code = 400
    default_code = "invalid"
    default_detail = "The JSON body is nested too deeply."


def max_depth(text: str, limit: int) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings
    do not count); stops counting past ``limit``. Iterative: no recursion."""
    structure = _NOT_BRACKET.sub("", _STRING.sub("", text))
    deepest = 0
    for depth in accumulate(_STEP[c] for c in structure):
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def bad_text_paths(document: Any, limit: int = 10) -> list[str]:
    """Dotted paths of the strings holding a NUL or a lone surrogate (at
    most ``limit``); iterative, like the depth check."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack and len(found) < limit:
        path, value = stack.pop()
        if isinstance(value, str):
            if BAD_TEXT.search(value):
                found.append(path or "non_field_errors")
        elif isinstance(value, dict):
            for key, item in value.items():
                if BAD_TEXT.search(key):
                    # The key itself cannot be shown.
                    found.append(f"{path}.(key)" if path else "(key)")
                    continue
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value))
    return sorted(found)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _NumberTooLarge(ValueError):
    pass


def _finite_float(text: str) -> float:
    # 1e400 is valid JSON that Python reads as infinity, which PostgreSQL's
    # JSON refuses (a 500 when a task's params held one).
    value = float(text)
    if math.isinf(value):
        raise _NumberTooLarge(text)
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser with the checks above; always UTF-8 (RFC 8259)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"The body is not valid UTF-8 (byte {exc.start}).") from None
        depth_limit = settings.API_MAX_JSON_DEPTH
        if max_depth(text, depth_limit) > depth_limit:
            raise NestingTooDeep(f"The JSON body nests arrays and objects more than {depth_limit} levels deep.")
        try:
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except _NumberTooLarge as exc:
            shown = exc.args[0] if len(exc.args[0]) <= 40 else exc.args[0][:40] + "…"
            raise exceptions.ParseError(f"The body holds a number too large to store ({shown}).") from None
        except (ValueError, RecursionError) as exc:
            where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise exceptions.ParseError(f"The body is not valid JSON{where}.") from None
        # Decoded UTF-8 holds no lone surrogate, and the decoder refuses a raw
        # NUL: either can only come from a \u escape. Most bodies have none,
        # and are spared the walk over every string.
        paths = bad_text_paths(data) if "\\u" in text else []
        if paths:
            raise exceptions.ValidationError(bad_text_errors(paths))
        return data


def bad_text_errors(paths: list[str]) -> dict[str, list[str]]:
    """Errors keyed by the request's field (the top-level key), as for any
    other field error; the message says where inside it."""
    errors: dict[str, list[str]] = {}
    for path in paths:
        field = path.split(".", 1)[0]
        where = path if len(path) <= 200 else path[:200] + "…"
        message = BAD_TEXT_MESSAGE if path == field else f"{BAD_TEXT_MESSAGE[:-1]} (at {where})."
        errors.setdefault(field, []).append(message)
    return errors

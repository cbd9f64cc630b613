"""Input hygiene in one place, before any view, form or query sees a request.

``InputHygieneMiddleware`` refuses what no view can handle safely:

- a request target (path and query string, as sent) longer than
  ``REQUEST_MAX_URL_BYTES``: 414;
- under ``/api/v1/``, a body longer than ``DATA_UPLOAD_MAX_MEMORY_SIZE``
  (by its Content-Length, before a byte is read): 413 ``too_large``;
- a ``charset`` in the Content-Type that is not UTF-8 (or its subset
  US-ASCII): unknown names (``rot13``) and encodings that are not
  ASCII-compatible (``utf-16``) would make Django decode the query string
  or the form wrongly or crash; 415 under ``/api/v1/``, a 400 page
  elsewhere;
- a NUL character or a lone surrogate in the path, in a query parameter or
  in a form field: PostgreSQL refuses NUL in text and UTF-8 cannot encode a
  lone surrogate, so either would end as a 500 far from here; 400;
- a query string or an urlencoded form that is not UTF-8 once its
  %-escapes are undone (Django would store U+FFFD in place of the bytes); 400.

JSON bodies are checked by the API's parser (``missioncontrol.api.parsers``),
which runs after authentication. What was refused is never echoed back: the
answer names where the problem is, not the value.

It also makes every answer under ``/api/v1/`` that is not a success the
API's JSON error shape, whoever produced it (a 405 from a plain Django view,
a CSRF refusal, a 404 from the URL resolver), and marks pages served to a
logged-in user ``Cache-Control: no-store, private``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.http import parse_header_parameters

from missioncontrol import errorpages

# Charsets whose bytes read the same as UTF-8 for everything Django parses.
ALLOWED_CHARSETS = frozenset({"utf-8", "ascii"})
_NUL_ESCAPE = re.compile(rb"%00", re.IGNORECASE)
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
BAD_TEXT = "Text may not contain NUL characters or unpaired surrogates."


def bad_text(text: str) -> bool:
    """A NUL or a lone surrogate: neither can be stored nor encoded."""
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def utf8_encoded(urlencoded: bytes) -> bool:
    """Whether a query string or an urlencoded form decodes as UTF-8 once its
    %-escapes are undone. Django decodes them with errors="replace", so a
    lone surrogate sent as %ED%A0%80 or a stray %FF would otherwise be
    stored as U+FFFD, where the API refuses the same bytes."""
    if b"%" not in urlencoded and urlencoded.isascii():
        return True
    try:
        unquote_to_bytes(urlencoded.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def charset_allowed(name: str) -> bool:
    try:
        return codecs.lookup(name).name in ALLOWED_CHARSETS
    except LookupError:
        return False


def charset_refusal(charset: str | None, *, api: bool) -> tuple[int, str, str] | None:
    """(status, code, detail) refusing a charset other than UTF-8, or None.
    The detail does not name it: it may be anything the client sent."""
    if charset is None or charset_allowed(charset):
        return None
    detail = "The request's charset is not supported; send UTF-8."
    return (415, "unsupported_media_type", detail) if api else (400, "bad_request", detail)


def environ_charset_refusal(environ: dict) -> tuple[int, str, str] | None:
    """``charset_refusal`` for a request Django has not built yet: building
    it with a charset such as ``rot13`` fails inside Django (it decodes the
    query string with it), so missioncontrol.wsgi asks this first."""
    try:
        _, params = parse_header_parameters(environ.get("CONTENT_TYPE", ""))
    except ValueError:
        return (400, "bad_request", "The Content-Type header cannot be parsed.")
    return charset_refusal(params.get("charset"), api=errorpages.is_api_path(environ.get("PATH_INFO", "")))


class InputHygieneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self.refuse(request)
        response = refusal if refusal is not None else self.get_response(request)
        if errorpages.is_api(request):
            response = errorpages.as_api_error(response)
        return response

    def refuse(self, request: HttpRequest) -> HttpResponse | None:
        environ = request.META
        api = errorpages.is_api(request)
        raw_path = environ.get("PATH_INFO", "").encode("latin-1", "replace")
        raw_query = environ.get("QUERY_STRING", "").encode("latin-1", "replace")
        if len(raw_path) + len(raw_query) + 1 > settings.REQUEST_MAX_URL_BYTES:
            return errorpages.error_response(
                request,
                414,
                "uri_too_long",
                f"The URL is longer than {settings.REQUEST_MAX_URL_BYTES} bytes; send the data in the body.",
            )
        if api:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return errorpages.error_response(
                    request, 400, "bad_request", "The Content-Length header is not a number."
                )
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                return errorpages.error_response(
                    request,
                    413,
                    "too_large",
                    f"The request body is {length} bytes; the limit is {settings.DATA_UPLOAD_MAX_MEMORY_SIZE}.",
                )
        refused = charset_refusal((request.content_params or {}).get("charset"), api=api)
        if refused is not None:
            return errorpages.error_response(request, *refused)
        if bad_text(request.path_info) or b"\x00" in raw_path:
            return self.bad_text(request, "path")
        if b"\x00" in raw_query or _NUL_ESCAPE.search(raw_query):
            return self.bad_text(request, "query")
        if not utf8_encoded(raw_query):
            return self.not_utf8(request, "query")
        for key, values in request.GET.lists():
            if bad_text(key) or any(bad_text(v) for v in values):
                return self.bad_text(request, "query")
        if not api and request.method == "POST" and request.content_type in _FORM_TYPES:
            if request.content_type == "application/x-www-form-urlencoded" and not utf8_encoded(request.body):
                return self.not_utf8(request, "form")
            # The CSRF check reads the same form next; reading it here first
            # costs nothing more.
            for key, values in request.POST.lists():
                if bad_text(key) or any(bad_text(v) for v in values):
                    return self.bad_text(request, "form")
        return None

    def not_utf8(self, request: HttpRequest, where: str) -> HttpResponse:
        return errorpages.error_response(request, 400, "invalid", f"The request's {where} is not valid UTF-8.")

    def bad_text(self, request: HttpRequest, where: str) -> HttpResponse:
        return errorpages.error_response(
            request,
            400,
            "invalid",
            f"The request's {where} contains a NUL character or an unpaired surrogate.",
            errors={where: [BAD_TEXT]},
        )


class NoStoreForLoggedInMiddleware:
    """``Cache-Control: no-store, private`` on every answer to a logged-in
    user (a browser session or an API token), so no shared or browser cache
    keeps a page that only they may see. Decided without a database query:
    a request that carries a session cookie or an Authorization header, or
    whose user is already known to be authenticated, counts as logged in."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.logged_in(request):
            add_never_cache_headers(response)
        return response

    @staticmethod
    def logged_in(request: HttpRequest) -> bool:
        if settings.SESSION_COOKIE_NAME in request.COOKIES or "HTTP_AUTHORIZATION" in request.META:
            return True
        user = getattr(request, "user", None)
        wrapped = getattr(user, "_wrapped", user)
        return bool(getattr(wrapped, "is_authenticated", False) is True)

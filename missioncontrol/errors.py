"""The one business error type. It carries a stable ``code`` (and, for bad
input, field ``errors``), never an HTTP status: the core knows nothing of
HTTP. Each interface maps codes to its own answer; the API's one table is
``missioncontrol.api.errors.STATUS_FOR_CODE``."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    def __init__(
        self,
        code: str,
        detail: str,
        *,
        # Per field a list of messages; a batch nests them per item index.
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors

    def as_dict(self) -> dict:
        body: dict = {"detail": self.detail, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid(errors: dict[str, list[str]], detail: str = "The request has invalid fields.") -> ServiceError:
    return ServiceError("invalid", detail, errors=errors)


def not_found(what: str, key: str) -> ServiceError:
    return ServiceError("not_found", f"No {what} named {key!r}.")

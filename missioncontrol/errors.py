"""The one business error type. Every interface maps it to one error shape:
``{"detail": ..., "code": ..., "errors"?: {...}}`` with the HTTP status it carries."""

from __future__ import annotations


class ServiceError(Exception):
    default_http_status = 409

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.http_status = status if status is not None else self.default_http_status
        self.errors = errors

    @property
    def status(self) -> int:
        """The HTTP status an interface answers with (not a domain status)."""
        return self.http_status

    def as_dict(self) -> dict:
        body: dict = {"detail": self.detail, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid(errors: dict[str, list[str]], detail: str = "The request has invalid fields.") -> ServiceError:
    return ServiceError("invalid", detail, status=400, errors=errors)


def not_found(what: str, key: str) -> ServiceError:
    return ServiceError("not_found", f"No {what} named {key!r}.", status=404)

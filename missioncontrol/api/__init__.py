"""Plumbing shared by the REST API v1 (see ../shared/API.md): the one error
shape, role permissions, pagination, idempotent responses and the schema."""

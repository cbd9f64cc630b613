"""The REST API v1 (see ../shared/API.md): every endpoint of the project, one
module per concept (``catalog``, ``plans``, ``tasks``, ``attempts``,
``native_runs``, their shapes in ``serializers/``), and the plumbing they
share: the one error shape, role permissions, pagination, idempotent
responses and the schema."""

"""The ``external`` executor pulls: nothing is pushed. An outside executor
lists ``launch_requested`` tasks through the API, runs them with the
current attempt id stamped on its native run, and reports back."""

from __future__ import annotations

from .base import Executor, LaunchRequest


class ExternalExecutor(Executor):
    name = "external"

    def launch(self, request: LaunchRequest) -> None:
        # Nothing to do: the attempt waits in launch_requested until the
        # executor picks it up through the API.
        return None

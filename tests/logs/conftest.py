import json
import logging

import pytest
import structlog

from missioncontrol.observability.logs import configure


class JsonLines(logging.Handler):
    """The JSON lines production would write, collected."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        formatter = configure(fmt="json", level="INFO")["formatters"]["structured"]
        self.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=formatter["processors"], foreign_pre_chain=formatter["foreign_pre_chain"]
            )
        )
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_lines():
    handler = JsonLines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)

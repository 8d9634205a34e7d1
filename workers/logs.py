"""Log lines that text from producers and operators cannot forge.

A command's `issued_by` or a model name is written into log messages; a newline in it
would start a line of the attacker's choosing. Every record's message has its control
characters escaped, whatever handler or formatter prints it (Faust installs its own);
tracebacks, formatted apart from the message, keep their lines.
"""

from __future__ import annotations

import logging
from typing import Any


class _OneLineRecord(logging.LogRecord):
    def getMessage(self) -> str:
        message = super().getMessage()
        if message.isprintable():
            return message
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def install() -> None:
    """Make every log record's message one line (idempotent)."""
    logging.setLogRecordFactory(_OneLineRecord)


def record(msg: str, *args: Any) -> logging.LogRecord:
    """A record as the installed factory builds it (for tests)."""
    return logging.getLogRecordFactory()("t", logging.INFO, __file__, 0, msg, args, None)

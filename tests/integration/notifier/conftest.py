"""The notifier tests' SMTP server (tests.fixtures.mailbox)."""

from tests.fixtures.mailbox import mailbox

__all__ = ["mailbox"]

"""The one exception type for user mistakes.

Anything a user can fix (a missing file, a malformed split line, an unknown task, a bad config value) raises
:class:`UserError` with a message that names the file, line or field and says what would be valid.  The CLI turns
it into one line on stderr and exit status 2; library users catch it like any exception.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave us; ``str(err)`` is the one line shown to them."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`UserError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)

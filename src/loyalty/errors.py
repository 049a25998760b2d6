"""Errors a user can fix. The CLI prints them as one line (``error: ...``) instead of a traceback."""


class LoyaltyError(Exception):
    """A problem with the input or the configuration, stated so the user can act on it."""

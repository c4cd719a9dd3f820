"""User-facing errors: the CLI prints their message, not a traceback."""


class E2EError(Exception):
    """Something the user can fix: bad input, a missing dataset, a wrong option.

    The message says what is wrong (naming the file, line or value) and what to do.
    """


class DatasetMissing(E2EError):
    """A dataset is not installed; the message carries the command that installs it."""

    def __init__(self, what: str, install: str):
        super().__init__(f"{what} is not installed. Install it with:\n    {install}")
        self.install = install


class NonFiniteLoss(E2EError):
    """The loss became NaN or Inf; training stops, the last good checkpoint is kept."""

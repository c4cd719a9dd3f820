"""User-facing errors: the CLI prints their message, not a traceback."""

import errno


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


def describe_os_error(e: OSError) -> str:
    """One line for an OSError the system raised on the user's behalf (disk full, ...)."""
    where = f" ({e.filename})" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device{where}: free some space or choose another "
                "--out; a training run's last checkpoint is intact, continue it with "
                "`e2e train --resume RUN`")
    reason = e.strerror or str(e) or type(e).__name__
    return f"{reason}{where}"

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
    """One line for an OSError the system raised on the user's behalf (disk full, ...).
    It claims nothing about checkpoints: a training run says what it kept itself
    (RunDir.disk_full), since only it knows whether one was written."""
    where = f" ({e.filename})" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device{where}: free some space or write elsewhere"
    reason = e.strerror or str(e) or type(e).__name__
    return f"{reason}{where}"


def number(kind: type, low: float, high: float = float("inf")):
    """An argparse `type=` for a number flag: parses it and refuses it outside [low, high]
    (NaN and infinities too), so every command's numbers are checked where they are declared."""
    import argparse
    import math

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            kind_name = 'a whole number' if kind is int else 'a number'
            raise argparse.ArgumentTypeError(f"expected {kind_name}, "
                                             f"got {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            allowed = f"at least {low:g}" if high == float("inf") else f"in [{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def check_range(flag: str, value: float, low: float, high: float = float("inf")) -> None:
    """Refuse a number given on the command line outside [low, high], NaN and infinities
    included: one line naming the flag, instead of a traceback far from it."""
    import math

    if not (math.isfinite(value) and low <= value <= high):
        allowed = f"at least {low:g}" if high == float("inf") else f"in [{low:g}, {high:g}]"
        raise E2EError(f"{flag} must be a finite number {allowed}, got {value}")

"""User-facing errors.

A `DstabError` means the input was wrong, not the code: the CLI prints its
message on one line and exits with status 2, the dashboard shows it with
`st.error`. Everything else is a bug and keeps its traceback.
"""


class DstabError(ValueError):
    """Bad input: the message names the problem and what to do about it."""


class DstabWarning(UserWarning):
    """A result that is returned but must be read with care (NaN points, a cache that could not be
    written): the CLI prints it as one `warning:` line, the API raises it as a Python warning."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise DstabError(message)


def is_int(v) -> bool:
    """An integer option value (a JSON true/false is not one)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)

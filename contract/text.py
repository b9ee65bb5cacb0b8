"""Text that UTF-8 can carry: JSON's escapes (and file names Python could not decode) can give a
lone UTF-16 surrogate, which no UTF-8 file, SQLite store, header or process environment takes. Standard
library only: the worker imports it in the version's own Python."""

from __future__ import annotations

LONE_SURROGATE = "a lone UTF-16 surrogate, which is not Unicode text"
"""What every refusal of such text says it holds."""


def is_unicode_text(text: str) -> bool:
    """Whether `text` holds no lone UTF-16 surrogate (which JSON's escapes can give), so UTF-8 can carry it."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def carried(text: str) -> str:
    """`text` as UTF-8 can carry it: a lone surrogate (a file name Python could not decode, in an
    exception's message) as its escape, `\\udcff`, as a traceback prints it. For the worker's messages
    and the text the SQLite stores keep; a result holding one fails its request instead."""
    return text if is_unicode_text(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


MESSAGE_LIMIT = 64 * 1024
"""How many characters of a message (a failed start's, a failed build's) the emulator logs and keeps, as it
logs a deployment's output in pieces of 64 KiB: an `__init__` raising with a 45 MB message was logged whole,
twice, and the log store's retention then dropped every earlier line of the project's."""


def shortened(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text`, or its first `limit` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … (cut short: {len(text)} characters in all)"

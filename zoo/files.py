"""Files that are whole or absent: writes that a crash cannot leave half done, and the error a
failed write becomes.

Every file the zoo writes for later (checkpoints' run state and final weights, export versions,
results) is written beside its destination, flushed to disk and renamed into place: a rename
within one folder is atomic, so a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

from zoo.source import SpecError


class RunFailure(RuntimeError):
    """A failure of the machine, not of the input (e.g. a full disk), with a message that
    says what happened, what is kept and how to go on; shown as it is, exit code 1."""


def write_failure(what: str, exc: Exception, advice: str) -> RunFailure:
    """A failed write (a full disk, a lost permission) as one message: what, why, what now.
    TensorFlow's own errors end with the reason: '... path; No space left on device [Op:X]'."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = str(exc).strip().splitlines()[0].rsplit("; ", 1)[-1].split(" [Op:")[0]
    return RunFailure(f"could not write {what}: {reason}. {advice}")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".tmp"):
    """A temporary file name beside `path` for the caller to write; once the block ends without
    an error, the file is flushed to disk and renamed to `path`. `suffix` is the temporary
    name's ending, for writers that insist on one (Keras: `.weights.h5`)."""
    directory = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(dir=directory, suffix=suffix,
                                             prefix=f".{os.path.basename(path)}.")
    os.close(descriptor)
    try:
        yield temporary
        fsync_file(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomically(path: str, text: str) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_json_atomically(path: str, value) -> None:
    write_text_atomically(path, json.dumps(value, indent=2, default=float) + "\n")


def fsync_file(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_tree(directory: str) -> None:
    """Flush every file under `directory` to disk (before a rename makes it visible)."""
    for root, _, files in os.walk(directory):
        for name in files:
            fsync_file(os.path.join(root, name))


# --- generated parts of hand-written files (the README's zoo table, the reference's keys) ----


def span_between(text: str, begin: str, end: str, file: str) -> tuple[int, int]:
    """Where the generated text between the lines `begin` and `end` sits in a file's text."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise SpecError(None, "", f"{file}: no markers for the generated part; put the lines "
                                  f"{begin} and {end} where it belongs")
    return start + len(begin) + 1, stop


def replace_between(text: str, begin: str, end: str, generated: str, file: str) -> str:
    start, stop = span_between(text, begin, end, file)
    return text[:start] + generated + "\n" + text[stop:]


def update_text(file: str, change) -> bool:
    """Apply `change` (text -> text) to a file; rewrite it only if that changed it, and say
    whether it did."""
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise SpecError(None, "", f"{file}: {exc.strerror}") from None
    updated = change(text)
    if updated != text:
        write_text_atomically(file, updated)
    return updated != text

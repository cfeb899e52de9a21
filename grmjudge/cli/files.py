"""The files of a ``grmjudge score`` run, each checked and opened before any of them is changed.

A run reads its input and writes its output and its errors file. All three are opened first and nothing is
emptied meanwhile: a path that cannot be read or written (permissions, a read-only disk, a file where a
directory should be) stops the command with a usage error while every file is as it was, and a file the check
created is removed again. Only when the whole command has been checked are the files emptied for the run.
Opening for real, rather than asking ``os.access``, gets the kernel's own answer (ACLs, read-only mounts,
immutable files), for root as for anyone else. With ``--resume`` the existing output is checked too
([`load_existing_output`][grmjudge.cli.files.load_existing_output]): its complete lines are kept, and resuming is
refused when it would mix runs.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO

from grmjudge.cli.options import ScoreOptions, UsageError
from grmjudge.journal import IdIndex, Journal, JournalError, check_provenance
from grmjudge.score_lines import decode_object, item_id_of

STDIN = "-"
_SHOWN = 5
_ADVICE = "resume with the same settings, or write to a new output"
_KINDS = {
    stat.S_IFDIR: "directory",
    stat.S_IFIFO: "pipe",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


@dataclass
class RunFiles:
    """The open files of a run: the input, and the output and errors file open to append, not yet emptied."""

    source: BinaryIO
    output: BinaryIO
    errors: BinaryIO
    created: list[Path] = field(default_factory=list[Path])

    def start(self, *, keep_output: bool, cut_output: bool = False) -> None:
        """Empty the errors file, and the output unless it is kept (``--resume``): from now on the run writes.

        Every file to be cut (the kept output too, when ``cut_output`` says its partial last line will be cut)
        is first truncated to its own length, which changes no byte: a file that refuses it (an append-only
        one, ``chattr +a``) stops the command before any file is emptied.
        """
        emptied = [("errors file", self.errors)] + ([] if keep_output else [("output", self.output)])
        probed = emptied + ([("output", self.output)] if keep_output and cut_output else [])
        for name, file in probed:
            _truncate(name, file, None)
        for name, file in emptied:
            _truncate(name, file, 0)
        self.created.clear()

    def close(self) -> None:
        """Close the files (standard input stays open)."""
        _release((self.source, self.output, self.errors), ())

    def discard(self) -> None:
        """Close the files and remove those the check created: the command leaves no trace."""
        _release((self.source, self.output, self.errors), self.created)


def check_paths(o: ScoreOptions) -> None:
    """Refuse paths that cannot work, from their names and kinds alone; raises UsageError."""
    if o.input != STDIN:
        _looked_up("input", Path(o.input), _check_input)
    for name, path in (("output", o.output), ("errors file", o.errors)):
        _looked_up(name, path, partial(_check_target, name))
    if o.resume and o.input == STDIN:
        raise UsageError("--resume reads the input twice, so the input must be a file, not standard input")
    if o.resume and not o.output.is_file():
        raise UsageError(
            f"--resume needs an existing output file, and {o.output} does not exist (run without --resume)"
        )
    paths = {"input": Path(o.input) if o.input != STDIN else None, "output": o.output, "errors file": o.errors}
    if o.cache is not None:
        paths["cache"] = o.cache
    _check_distinct({name: p.resolve() for name, p in paths.items() if p is not None})


def open_run_files(o: ScoreOptions) -> RunFiles:
    """Open the input to read, the output and the errors file to append, changing no byte; UsageError if one fails.

    With ``--resume`` the output is opened to read and write, as the resume check reads it before appending.
    """
    files: list[BinaryIO] = []
    created: list[Path] = []
    try:
        files.append(sys.stdin.buffer if o.input == STDIN else _open_input(Path(o.input)))
        files.append(_open_to_append("output", o.output, created, read=o.resume))
        files.append(_open_to_append("errors file", o.errors, created, read=False))
    except BaseException:
        _release(files, created)
        raise
    source, output, errors = files
    return RunFiles(source, output, errors, created)


def _truncate(name: str, file: BinaryIO, size: int | None) -> None:
    """Cut ``file`` to ``size`` bytes (None: to its own length); /dev/null or a terminal is left alone."""
    try:
        status = os.fstat(file.fileno())
        if stat.S_ISREG(status.st_mode):
            os.ftruncate(file.fileno(), status.st_size if size is None else size)
    except OSError as exc:  # e.g. an append-only file
        raise UsageError(f"cannot empty the {name} {file.name}: {_reason(exc)}") from exc


def _release(files: Sequence[BinaryIO], created: Sequence[Path]) -> None:
    for file in files:
        if file is not sys.stdin.buffer:
            file.close()
    for path in created:  # files first, then the folders they were in
        with suppress(OSError):  # the refusal is what the user must see
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)


def _looked_up(name: str, path: Path, check: Callable[[Path], None]) -> None:
    """Run ``check``; a path the system cannot even look up (a name too long, no permission) is a usage error."""
    try:
        check(path)
    except OSError as exc:
        raise UsageError(f"cannot use the {name} {path}: {_reason(exc)}") from exc


def _check_input(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"input file {path} does not exist")
    if path.is_dir():
        raise UsageError(f"the input {path} is a directory, not a file")
    if not path.is_file():
        raise UsageError(
            f"the input {path} is a {_kind(path)}, not a file: give '-' and redirect it to standard input instead"
        )


def _check_target(name: str, path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"the {name} {path} is a directory")
    parent = path.parent
    if not parent.exists():
        raise UsageError(f"the directory of the {name} {path} does not exist")
    if not parent.is_dir():
        raise UsageError(f"cannot create the {name} {path}: {parent} is a {_kind(parent)}, not a directory")


def _check_distinct(paths: dict[str, Path]) -> None:
    seen: dict[Path, str] = {}
    for name, path in paths.items():
        if path in seen:
            raise UsageError(f"the {seen[path]} and the {name} are the same file ({path})")
        seen[path] = name


def _open_input(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read the input {path}: {_reason(exc)}") from exc


def _open_to_append(name: str, path: Path, created: list[Path], *, read: bool) -> BinaryIO:
    """``path`` open to append, unbuffered; created if missing (and then listed in ``created``), never emptied."""
    flags = (os.O_RDWR if read else os.O_WRONLY) | os.O_APPEND | os.O_CLOEXEC

    def create(target: str, _: int) -> int:
        return os.open(target, flags | os.O_CREAT | os.O_EXCL, 0o666)

    def reopen(target: str, _: int) -> int:
        return os.open(target, flags)

    try:
        file = open(path, "ab", buffering=0, opener=create)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UsageError(f"cannot create the {name} {path}: {_reason(exc)}") from exc
    else:
        created.append(path)
        return file
    try:
        return open(path, "ab", buffering=0, opener=reopen)
    except OSError as exc:
        raise UsageError(f"cannot write to the {name} {path}: {_reason(exc)}") from exc


def _kind(path: Path) -> str:
    return _KINDS.get(stat.S_IFMT(path.stat().st_mode), "file")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@dataclass(frozen=True)
class ExistingOutput:
    """The ids already written, how many lines hold them, and the size of a cut last line to drop."""

    ids: IdIndex
    lines: int
    dropped_bytes: int


def load_existing_output(
    path: Path, expected: Mapping[str, object], input_lines: Iterator[tuple[int, bytes | None]]
) -> ExistingOutput:
    """Collect the ids of the complete lines of ``path``, checking every line; change nothing.

    Each id must stand for a line of the input (else the output was made from another input), appear once, and
    carry provenance matching ``expected`` (k, model, seed, ...: a mismatch would mix two experiments in one
    file). A partial last line is only measured; [`truncate_partial_line`][grmjudge.journal.truncate_partial_line]
    removes it once every check has passed. Every refusal is a [`JournalError`][grmjudge.journal.JournalError].
    """
    in_input = input_ids(input_lines)
    journal = Journal(path, kind="grmjudge output file")
    done = IdIndex()
    missing: list[str] = []
    lines = 0
    for lines, record in journal.records():
        item_id = record.get("id")
        if not isinstance(item_id, str):
            raise JournalError(f"line {lines} of {path} has no string 'id'; it is not a grmjudge output file")
        if item_id in done:
            raise JournalError(f"id {item_id!r} appears twice in {path} (line {lines}); the file was edited or merged")
        check_provenance(path, lines, _provenance(path, lines, record.get("provenance")), expected, advice=_ADVICE)
        if item_id not in in_input:
            missing.append(item_id)
        done.add(item_id, lines)
    if missing:
        raise JournalError(_missing_message(path, missing))
    return ExistingOutput(ids=done, lines=lines, dropped_bytes=journal.partial_bytes)


def input_ids(lines: Iterator[tuple[int, bytes | None]]) -> IdIndex:
    """The ids the input's lines stand for (lines that are JSON objects: given ids, else line numbers)."""
    ids = IdIndex()
    for number, raw in lines:
        value = decode_object(number, raw) if raw is not None else None
        if isinstance(value, dict):
            ids.add(item_id_of(number, value), number)
    return ids


def _provenance(path: Path, number: int, provenance: object) -> dict[str, object]:
    """A line's provenance as compared: each line records its own adaptive stop, a run shares only the policy."""
    if not isinstance(provenance, dict):
        raise JournalError(f"line {number} of {path} has no provenance; it is not a grmjudge output file")
    found: dict[str, object] = dict(provenance)  # pyright: ignore[reportUnknownArgumentType]
    adaptive = found.get("adaptive")
    found["adaptive"] = adaptive.get("policy") if isinstance(adaptive, dict) else None  # pyright: ignore[reportUnknownMemberType]
    return found


def _missing_message(path: Path, missing: list[str]) -> str:
    shown = ", ".join(repr(i) for i in missing[:_SHOWN])
    more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    return (
        f"{len(missing)} id(s) in {path} are not in the input ({shown}{more}): "
        "the output was made from another input file; write to a new output instead"
    )

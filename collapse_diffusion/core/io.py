"""Atomic file output: every stage writes to a temporary name, then renames.

A run killed at any moment leaves either the previous file or the complete new one, never a torn
file, so a stage whose output exists is done and is skipped on resume.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _honour_umask(path: Path, directory: bool) -> None:
    """mkstemp/mkdtemp create 0600/0700; give the final file the mode a plain open() would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def remove_stale_temporaries(root: str | Path) -> int:
    """Delete the temporary files and folders a killed run left behind (``.NAME.*.tmp*``, ``.NAME.old``).
    Call only while no stage writes under ``root``; returns how many were removed."""
    count = 0
    for p in sorted(Path(root).rglob(".*"), key=lambda q: len(q.parts), reverse=True):
        if p.name.endswith(".old") or ".tmp" in p.name:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            count += 1
    return count


def _full_disk(exc: BaseException, path: Path) -> bool:
    """Whether a failed write failed for want of space (libraries other than the OS's, such as
    safetensors or torch.save, raise their own errors for it: the free space tells)."""
    import errno
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    try:
        return shutil.disk_usage(path.parent if path.parent.exists() else path).free < 4 * 2 ** 20
    except OSError:
        return False


@contextmanager
def _space_checked(path: Path) -> Iterator[None]:
    from .errors import UserError
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, UserError) and _full_disk(exc, path):
            raise UserError(f"the disk is full writing '{path}'; free some space and run the same command again "
                            f"(nothing half-written is kept)") from None
        raise


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename. A full
    disk is a UserError naming ``path``; the temporary is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    _honour_umask(Path(tmp), directory=False)
    try:
        with _space_checked(path):
            yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it becomes ``path``. A full disk
    is a UserError naming ``path``; the temporary folder is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    _honour_umask(tmp, directory=True)
    try:
        with _space_checked(path):
            yield tmp
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --- sealed files: what a run wrote, checked before it is reused ---------------------------------

MANIFEST = ".manifest.jsonl"  # one JSON line per finished file of a folder: name, size, SHA-256


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (``algorithm``: any name hashlib knows), read in 1 MiB blocks."""
    import hashlib
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    return file_digest(path)


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST) if path.is_dir() else [path]


def seal(*paths: str | Path) -> None:
    """Record the size and SHA-256 of finished files so that a later run can tell them from a file
    damaged since (:func:`check_sealed`): a file's record goes to its folder's manifest, a folder's
    (a model, a checkpoint) to a manifest inside it, which can be written before the folder is
    renamed into place and so travels with it atomically."""
    for path in map(Path, paths):
        base = path if path.is_dir() else path.parent
        lines = [json.dumps({"name": f.relative_to(base).as_posix(), "size": f.stat().st_size, "sha256": _sha256(f)})
                 for f in _files(path)]
        if path.is_dir():
            (path / MANIFEST).write_text("".join(line + "\n" for line in lines))
        else:
            with open(path.parent / MANIFEST, "a") as fh:
                fh.write("".join(line + "\n" for line in lines))


def _records(manifest: Path) -> dict[str, dict]:
    """The latest record of each file in a manifest (a line torn by a kill is skipped)."""
    out: dict[str, dict] = {}
    for line in manifest.read_text().splitlines() if manifest.exists() else []:
        try:
            r = json.loads(line)
            out[r["name"]] = r
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _damage(path: Path) -> Optional[str]:
    """Why ``path`` (a file, or a folder and its files) differs from its record; None when it does not
    or when it has no record."""
    folder = path.is_dir() or (path / MANIFEST).exists()
    records = _records(path / MANIFEST) if folder else {k: v for k, v in _records(path.parent / MANIFEST).items()
                                                       if k == path.name}
    for name, rec in records.items():
        f = (path / name) if folder else path
        if not f.is_file():
            return f"'{f}' is missing"
        if f.stat().st_size != rec["size"]:
            return f"'{f}' has {f.stat().st_size} bytes, {rec['size']} when it was written"
        if _sha256(f) != rec["sha256"]:
            return f"'{f}' differs from when it was written (checksum)"
    return None


def check_sealed(*paths: str | Path) -> None:
    """Before finished files (or folders) that one stage wrote together are reused: compare them with
    their records. If one is damaged, all of them are moved aside (``.NAME.damaged``, kept for a look)
    and a UserError names it: running the same command again makes the stage write them anew. Files
    without a record are trusted."""
    from .errors import UserError
    paths = [Path(p) for p in paths]
    for path in paths:
        why = _damage(path)
        if why:
            for q in paths:
                aside = q.with_name(f".{q.name}.damaged")
                shutil.rmtree(aside, ignore_errors=True) if aside.is_dir() else aside.unlink(missing_ok=True)
                if q.exists():
                    os.replace(q, aside)
            raise UserError(f"{why}: it is damaged and was moved aside as .{path.name}.damaged; run the same "
                            f"command again to rebuild it")


def read_json(path: str | Path) -> Any:
    """A JSON file this tool wrote; a damaged one is a UserError naming it."""
    from .errors import UserError
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"'{path}' is damaged (not valid JSON); delete it and run the same command again to "
                        f"rebuild it") from None


def read_jsonl(path: str | Path) -> list[Any]:
    """Every record of a JSON-lines file this tool wrote, in order (blank lines skipped); a line that
    is not JSON is a UserError naming the file and the line."""
    from .errors import UserError
    out = []
    for i, line in enumerate(Path(path).read_text(errors="replace").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise UserError(f"'{path}' line {i} is not valid JSON; it was not written by this tool, or was cut "
                                f"short: delete the line or rebuild the file") from None
    return out

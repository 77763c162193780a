"""The command line: thin commands that parse, load the config and call one library function.

    common.py       the Typer app, the shared options and helpers
    stages.py       one command per stage outside a run: data, train, sample, evaluate, entropy, select
    study.py        run, chains, cycle, init, report
    experiments.py  phase, groundtruth

User mistakes raise :class:`UserError`; :func:`main` prints them as one line and exits with 2.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

import typer

from ..core.errors import TrainingDiverged, UserError
from . import experiments, stages, study  # noqa: F401  (each registers its commands on the app)
from .common import app

# --help lists the commands in the order of a cycle, then the study, then the experiments
ORDER = ("data", "train", "sample", "evaluate", "entropy", "select", "run", "chains", "cycle", "init", "report",
         "phase", "groundtruth")
app.registered_commands.sort(key=lambda c: ORDER.index(c.name or c.callback.__name__))

def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version
        typer.echo(f"collapse-diffusion {version('collapse-diffusion')}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Study and prevent model collapse in self-consuming diffusion models."""


def _os_error(exc: OSError) -> str:
    """One line for a failed read or write: what went wrong, where, and what to do."""
    import errno
    import re
    name = exc.filename
    temporary = re.match(r"^\.(.+)\.[^.]+\.tmp", Path(name).name) if name else None
    if temporary:  # our temporary beside the output: name the output
        name = str(Path(name).parent / temporary[1])
    where = f" '{name}'" if name else ""
    if exc.errno == errno.ENOSPC:
        return (f"the disk is full{' writing' + where if where else ''}; free some space and run the same command "
                f"again (finished files are kept, half-written ones are cleaned up)")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and name:
        parents = [q for q in Path(name).parents if q.exists() and not q.is_dir()]
        if parents:
            return f"'{parents[-1]}' is a file, not a folder; choose another output path"
    return f"{exc.strerror or exc}{':' + where if where else ''}; check the path and its permissions"


def _interrupted(signum, frame) -> None:
    """Ctrl-C, at any moment: one line, exit 130. Every stage writes atomically and a rerun resumes
    from the files already finished (as after kill -9), so nothing needs unwinding."""
    sys.stderr.write("interrupted: run the same command again to resume from the stages already finished\n")
    sys.stderr.flush()
    os._exit(130)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the console script and of ``python -m collapse_diffusion``."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _interrupted) if main_thread else None
    import matplotlib
    matplotlib.use("Agg")  # files only; the notebook keeps its inline backend
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("diffusers", "torch_fidelity", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        code = app(args=argv, standalone_mode=False, prog_name="collapse-diffusion")
    except (UserError, TrainingDiverged) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, UserError) else 1)
    except OSError as exc:  # a path the user gave cannot be read or written, or the disk is full
        typer.echo(f"error: {_os_error(exc)}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    finally:
        runtime = sys.modules.get("collapse_diffusion.core.runtime")
        if runtime is not None:
            runtime.shutdown()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    sys.exit(code if isinstance(code, int) else 0)

"""core/lock.py: POSIX (lockf) locks on run directories, between processes and within one; every
test is bounded to a few seconds and imports no torch."""
import errno
import fcntl
import os
import select
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT

from collapse_diffusion.core import lock
from collapse_diffusion.core.errors import UserError

# A child process that takes one lock, says "ready" and holds it until its stdin closes, or says
# "refused: <message>" and exits; after a start file appears when one is named (for races).
CHILD = r"""
import os, sys, time
from collapse_diffusion.core import lock
from collapse_diffusion.core.errors import UserError
kind, root, name, start = sys.argv[1:5]
while start and not os.path.exists(start):
    time.sleep(0.001)
held = lock.part(root, name) if kind == "part" else getattr(lock, kind)(root)
try:
    with held:
        print("ready", flush=True)
        sys.stdin.read()
except UserError as e:
    print("refused:", e, flush=True)
"""


def _child(kind, root, name="", start=""):
    return subprocess.Popen([sys.executable, "-c", CHILD, kind, str(root), name, str(start)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _line(p, seconds=10.0):
    """The child's first line, within ``seconds``."""
    ready, _, _ = select.select([p.stdout], [], [], seconds)
    assert ready, f"child {p.pid} said nothing in {seconds} s"
    line = p.stdout.readline().strip()
    assert line, p.stderr.read()[-2000:]
    return line


def _end(p):
    """Let a child go (it releases its lock), wait for it and close its pipes."""
    try:
        if not p.stdin.closed:
            p.stdin.close()
        p.wait(timeout=10)
        err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
    assert p.returncode == 0, err[-2000:]


def _probe(kind, root):
    """A child's answer to taking ``kind`` of root's lock now: "ready" or "refused: ..."."""
    p = _child(kind, root)
    try:
        return _line(p)
    finally:
        _end(p)


@pytest.fixture(autouse=True)
def _nothing_left_held():
    yield
    assert lock._holds == {}, "a lock is still registered as held"


def test_a_lock_held_by_another_process_refuses_then_lets_go(tmp_path):
    run = tmp_path / "r"
    holder = _child("exclusive", run)
    try:
        assert _line(holder) == "ready"
        for take in (lock.exclusive, lock.shared):
            with pytest.raises(UserError) as e:
                with take(run):
                    pass
            assert f"'{run}' is in use by process {holder.pid} on " in str(e.value)
            assert str(e.value).endswith("wait for it to end, or pass --wait to start when it does")
        assert run.is_dir() and [p.name for p in run.iterdir()] == [".lock"]  # a refusal removes nothing
    finally:
        _end(holder)
    with lock.exclusive(run):
        assert (run / ".lock").read_text() == f"process {os.getpid()} on {os.uname().nodename}\n"
    with lock.shared(run):
        pass


def test_waiting_starts_when_the_other_process_lets_go(tmp_path):
    run = tmp_path / "r"
    holder = _child("shared", run)
    got = threading.Event()

    def take():
        with lock.exclusive(run, wait=True):
            got.set()

    waiter = threading.Thread(target=take, daemon=True)
    try:
        assert _line(holder) == "ready"
        waiter.start()
        assert not got.wait(0.5)  # kept out while the other process holds it shared
    finally:
        _end(holder)
    assert got.wait(5)
    waiter.join(5)


def test_a_part_held_by_another_process_makes_this_one_wait(tmp_path):
    holder = _child("part", tmp_path, "replace.greedy")
    entered = threading.Event()

    def take():
        with lock.part(tmp_path, "replace.greedy"):
            entered.set()

    waiter = threading.Thread(target=take, daemon=True)
    try:
        assert _line(holder) == "ready"
        with lock.part(tmp_path, "replace.tdf"):  # another part is free
            pass
        waiter.start()
        assert not entered.wait(0.5)
    finally:
        _end(holder)
    assert entered.wait(5)
    waiter.join(5)
    assert (tmp_path / ".replace.greedy.lock").exists()


def test_within_one_process_exclusive_excludes_as_between_processes(tmp_path):
    run = tmp_path / "r"
    me = f"in use by process {os.getpid()} on "
    with lock.exclusive(run):
        for take in (lock.exclusive, lock.shared):
            with pytest.raises(UserError, match=me):
                with take(run):
                    pass
        with pytest.raises(UserError, match="already held by this process"):  # instead of waiting for itself
            with lock.exclusive(run, wait=True):
                pass
        assert _probe("exclusive", run).startswith(f"refused: '{run}' is {me}")  # refusals here kept the lock
    with pytest.raises(UserError, match="already held by this process"):
        with lock.part(tmp_path, "init"):
            with lock.part(tmp_path, "init"):
                pass
    assert _probe("exclusive", run) == "ready"


def test_shared_twice_in_one_process_is_counted(tmp_path):
    run = tmp_path / "r"
    with lock.shared(run):
        with lock.shared(run):
            with pytest.raises(UserError, match=f"in use by process {os.getpid()} on "):
                with lock.exclusive(run):
                    pass
            assert _probe("shared", run) == "ready"  # shared beside another process
        assert lock._holds  # the inner release left the lock held...
        assert _probe("exclusive", run).startswith("refused:")  # ...for other processes too
    assert _probe("exclusive", run) == "ready"


def test_another_thread_waits_for_the_holding_thread(tmp_path):
    run = tmp_path / "r"
    got = threading.Event()

    def take():
        with lock.exclusive(run, wait=True):
            got.set()

    with lock.exclusive(run):
        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert not got.wait(0.3)
    assert got.wait(5)
    waiter.join(5)


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK])
def test_a_file_system_without_posix_locks_is_named_in_one_line(tmp_path, monkeypatch, code):
    def lockf(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "lockf", lockf)
    run = tmp_path / "new"
    with pytest.raises(UserError) as e:
        with lock.exclusive(run):
            pass
    message = str(e.value)
    assert "\n" not in message and f"'{run / '.lock'}'" in message and "-o flock" in message
    assert "POSIX locks" in message
    assert not run.exists()  # a folder made for the refused run is gone again
    with pytest.raises(UserError, match="-o flock"):
        with lock.part(tmp_path, "shared"):
            pass
    assert tmp_path.is_dir()


def test_a_run_directory_is_never_worked_on_twice(tmp_path):
    for i in range(3):
        run, start = tmp_path / f"r{i}", tmp_path / f"go{i}"
        racers = [_child("exclusive", run, start=start) for _ in range(2)]
        try:
            time.sleep(0.2)  # both started and polling for the start file
            start.touch()
            answers = [_line(p) for p in racers]
            assert sorted(a.split(":")[0] for a in answers) == ["ready", "refused"], answers
            winner = racers[answers.index("ready")]
            assert f"in use by process {winner.pid} on " in answers[1 - answers.index("ready")]
            assert (run / ".lock").read_text().startswith(f"process {winner.pid} on ")
        finally:
            for p in racers:
                _end(p)

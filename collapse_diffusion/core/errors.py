"""Errors a user can fix. The CLI prints them as one line and exits with code 2, no traceback."""


class UserError(Exception):
    """Bad input: a wrong path, config, size or file. The message names the problem and the fix."""


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite; the run stops instead of writing a broken model."""

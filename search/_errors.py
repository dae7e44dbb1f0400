"""The error type of study orchestration; the CLI turns it into one line and an exit code."""


class SearchError(Exception):
    """Bad input or an unusable storage: a study that does not fit, an unreachable database."""

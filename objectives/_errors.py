"""The tool's one error root, and the error type every objectives module raises for bad input."""


class SearchError(Exception):
    """The root of every error this tool raises for bad input or an unusable storage (``search.SearchError``).

    The message is one line. An option the user gave is named by its Python name in backticks
    (`n_trials`), as the Python API spells it; the command line shows the flag instead (--n-trials).
    """


class ObjectiveError(SearchError):
    """Bad input to the objective: a data set, a search space, a configuration.

    The message is one line, written for the person who gave the input; the CLI
    prints it as it is.
    """


class DataError(ObjectiveError):
    """A data set could not be found, downloaded or read."""


class SpaceError(ObjectiveError):
    """A search space or training configuration is malformed."""


class ModelError(ObjectiveError):
    """A model function could not be imported, called, or built a network of the wrong shape."""


class Interrupted(KeyboardInterrupt):
    """Training stopped because the caller asked it to (a deferred Ctrl-C or SIGTERM)."""

"""The error type every objectives module raises for bad input."""


class ObjectiveError(Exception):
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

"""The command line: the parsers (`_cli`), the commands' handlers, and what only they print.

Nothing outside this package imports it (`search.__main__` and the package's face aside):
the Python API and the workers run without a line of command-line code.
"""

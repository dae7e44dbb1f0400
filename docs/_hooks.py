"""MkDocs hook: the command line reference (docs/cli.md) is generated from the argparse parsers, never written twice."""

from __future__ import annotations

MARK = "<!-- the commands' help, generated from search.cli._cli.build_parser() -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARK not in markdown:
        return markdown
    return markdown.replace(MARK, cli_reference())


def cli_reference() -> str:
    """Every command's --help, as `search COMMAND --help` prints it (an 88-column terminal)."""
    import os

    from search.cli._cli import build_parser

    os.environ["COLUMNS"] = "100"
    parser = build_parser()
    sections = [f"## search\n\n```text\n{parser.format_help()}```\n"]
    actions = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in actions.choices.items():
        sections.append(f"## search {name}\n\n```text\n{sub.format_help()}```\n")
    return "\n".join(sections)

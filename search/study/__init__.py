"""A study's run: its configuration and record, the run loop, its faults and signals, the one
search-then-confirm path (`_tune`), and what a run reports."""

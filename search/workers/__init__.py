"""Worker processes on one machine: how many, their threads, and their shares of a run's trials."""

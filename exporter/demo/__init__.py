"""The simulated Convocore API behind ``--demo``; wired in by the CLI and the tests alone."""

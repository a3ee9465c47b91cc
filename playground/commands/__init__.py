"""CLI subcommands; each module defines `register(subparsers)` (see playground/__main__.py). What
it leaves out: the computations (each command calls the backend function its tab calls)."""

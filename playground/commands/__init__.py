"""CLI subcommands; each module defines `register(subparsers)` (see playground/__main__.py)."""

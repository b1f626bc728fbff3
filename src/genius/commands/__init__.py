"""One module per ``genius`` subcommand (see genius.cli)."""

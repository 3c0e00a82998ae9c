"""``python -m calibgate`` runs the CLI."""

from calibgate.cli import main

main()

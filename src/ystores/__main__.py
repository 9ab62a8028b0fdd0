"""`python -m ystores` runs the `ystore` command."""

from .cli import main

main()

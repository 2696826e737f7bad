"""`python -m qeaims` = the `qeaims` command."""

from qeaims.cli import main

main()

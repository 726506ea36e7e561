"""`python -m bastion` is the `bastion` command."""

from bastion.cli import main

main()

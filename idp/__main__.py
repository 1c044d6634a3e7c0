"""``python -m idp`` is the ``idp`` command."""

from .cli import main

main()

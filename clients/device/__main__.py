"""``python -m clients.device``: the same as the ``idp-device`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main(prog_name="idp-device")

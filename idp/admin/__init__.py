"""Administration: pages, JSON API and the operations they share with the CLI."""

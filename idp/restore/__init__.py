"""Restoration: activating it on an enrolled device, and restoring (duplicating)
the ID on a new device with restoration code 1 and an e-mailed code 2."""

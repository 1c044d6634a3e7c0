"""Passkeys: discoverable WebAuthn credentials a user signs in with."""

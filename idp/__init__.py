"""Freigabe: an OpenID Connect provider with push approval on the user's device.

The application is built by ``idp.app.create_app``. This package root stays
empty, so that importing a part of it (the device client imports the wire
formats in ``idp.encoding`` and ``idp.webauthn``) loads nothing else.
"""

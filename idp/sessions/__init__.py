"""Your sessions: the user's login sessions in words (browser, place, how
each was confirmed, the apps it signed in to) and ending them, for the
account page (``views``), the device API, the browser device app, the admin
pages and API and the ``idp`` command. Sessions themselves, and the one way
they end, are ``idp.auth.sessions``."""

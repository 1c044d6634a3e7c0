"""Devices: the phones and browsers that confirm logins, their keys, notices
and push subscriptions."""

# Where devices talk to the server: the device API (idp.deviceapi).
API_PREFIX = "/device/v1"
# Where the browser device app (idp.deviceapp) lives, below the issuer: the
# account page's binding-code link and the pages that offer a device point here.
APP_PATH = "/app/"


def app_url(issuer: str) -> str:
    """The browser device app's address for this issuer."""
    return issuer.rstrip("/") + APP_PATH

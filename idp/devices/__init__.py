"""Devices: the phones and browsers that confirm logins, their keys, notices
and push subscriptions."""

# Where devices talk to the server: the device API (idp.deviceapi).
API_PREFIX = "/device/v1"

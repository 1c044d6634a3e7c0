"""Devices: the phones and browsers that confirm logins, their keys, notices
and push subscriptions."""

"""The browser device app (``/app/``): the device protocol in a PWA.

The page, its web manifest, its service worker (Web Push notifications) and
the localised texts they show; the app itself is ``idp/static/app.js`` and
talks to the device API (``/device/v1``) like any other device.
"""

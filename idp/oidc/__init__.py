"""OAuth 2.0 and OpenID Connect with Authlib: the authorization server
(``server``), its grants, tokens and claims, client registrations, signing
keys, back-channel logout, and the protocol endpoints (``views``)."""

"""Real peers for the tests: a Web Push service that decrypts, an SMTP server."""

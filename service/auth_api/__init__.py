"""The auth API capability (issue 10): JWT access tokens and rotating refresh tokens for the
accounts' users. So far its token core (no I/O): issuing and verifying access tokens, and
the refresh tokens' rotation with reuse detection over a store Protocol with an in-memory
fake. The endpoints, the database store and the admin settings page come next."""

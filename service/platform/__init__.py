"""The platform every capability builds on: settings, databases, Redis, rate limits, the
server, error pages, the capability type. A library: it imports no capability."""

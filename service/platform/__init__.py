"""The platform every capability builds on: settings, databases, the app factory, the
server, error pages. It imports no capability, except the app factory, which mounts them."""

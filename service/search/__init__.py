"""Stack Exchange search: pages to search question titles and browse the stored results,
a Redis response cache, a background refresher, and WebSocket notices of its refreshes.
Its pages are ``views.create_blueprint``; what it brings to the product, ``capability.py``."""

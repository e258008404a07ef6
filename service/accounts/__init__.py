"""The accounts capability: registered users (issue 9). So far its data layer and CLI:
the users table, password hashing, fake users, and loading users from a JSON file. The web
pages and the ``current_user`` / ``require_user`` seam for other capabilities come next."""

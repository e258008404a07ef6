"""The task API: users' tasks, each with an image on disk, handed out exactly once."""

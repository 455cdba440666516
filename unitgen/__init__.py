"""unitgen: SSH developer workspaces, one Docker container per person, supervised by systemd."""

__version__ = "0.1.0"

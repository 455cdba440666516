"""The benchmark of issue 7: N workspaces run several ways on one lab host; see README.md."""

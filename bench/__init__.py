"""The benchmark of issue 7: N workspaces run three ways on one lab host; see README.md."""

"""One module per object kind; each has `register(router)`."""

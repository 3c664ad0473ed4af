"""Predicates the services share when they list or prune by `filters`."""


def labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    """`label=key` and `label=key=value` filters: every one must hold."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True

"""Error kinds, as moby's errdefs: one class per meaning, never per HTTP status.

Subsystems raise these (or subclasses named for their domain, such as
`NoSuchImage(NotFound)`); `api/errors.py` holds the only table that turns a kind
into an HTTP status. Messages are written in dockerd's words, because the docker
CLI prints them verbatim after "Error response from daemon: ".
"""


class DockyardError(Exception):
    """Base of every error the daemon reports to a client."""

    @property
    def message(self) -> str:
        return str(self)


class NotFound(DockyardError):
    """The object asked for does not exist."""


class InvalidParameter(DockyardError):
    """The request is malformed or names impossible values."""


class Conflict(DockyardError):
    """The request clashes with the current state (a name in use, an image in use)."""


class NotModified(DockyardError):
    """Nothing to do: the object is already in the state asked for."""


class Forbidden(DockyardError):
    """The request is understood but not allowed."""


class Unauthorized(DockyardError):
    """Credentials are missing or wrong."""


class Unavailable(DockyardError):
    """A needed resource or service is not available right now."""


class NotImplemented(DockyardError):  # noqa: A001 - moby's name; shadows only here
    """The API exists in Docker but this engine does not provide it."""


class System(DockyardError):
    """The host failed us (I/O error, a syscall failing unexpectedly)."""


class DataLoss(System):
    """Stored data is corrupt or does not match its digest."""


def kind_of(error: DockyardError) -> type[DockyardError]:
    """The kind above, of an error of some subclass (for a new error of the same kind)."""
    return next(k for k in type(error).__mro__ if k.__module__ == __name__)

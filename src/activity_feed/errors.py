"""One exception tree for everything Activity Feed raises on purpose."""


class ActivityFeedError(Exception):
    """Base class of every error Activity Feed raises."""


class ConfigurationError(ActivityFeedError):
    """A setting that cannot work, such as a database URL of an unknown kind."""


class InvalidTokenError(ConfigurationError, ValueError):
    """A token that cannot travel in an HTTP header (a space, a control character, a non-ASCII letter)."""


class StoreUnavailableError(ActivityFeedError):
    """The database did not answer; the request may be retried later."""


class DataTooLargeError(ActivityFeedError):
    """An update whose `data`, merged into what is stored, would exceed the per-event limit."""

    def __init__(self, event_id: object, size: int, max_bytes: int) -> None:
        super().__init__(
            f"data of event {event_id} would be {size} bytes serialised after merging, "
            f"over the limit of {max_bytes} bytes per event"
        )


class InvalidCursorError(ActivityFeedError):
    """A stream cursor that this store did not hand out."""


class ReferenceNotFoundError(ActivityFeedError):
    """A query refers to an event that does not exist (for example `before=<unknown id>`).

    `location` and `value` name the parameter and what it held, as a validation error does."""

    def __init__(self, message: str, *, location: tuple[str, ...] = (), value: object = None) -> None:
        super().__init__(message)
        self.location = location
        self.value = value

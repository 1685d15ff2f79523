"""Exceptions shared by user code and the runner."""


class CancelationException(BaseException):
    """Raised inside a running prediction when it is canceled.

    A ``BaseException`` (like ``KeyboardInterrupt``) so a bare ``except Exception`` in user code does not swallow it.
    """

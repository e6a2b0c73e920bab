"""The service layer: one function per user action, each authorised by `policies`,
each change written with its audit event in one transaction. The CLI (and later the
HTTP service) call only this layer."""

from tre.service.session import Session

__all__ = ["Session"]

"""The server-rendered pages: sign-in, the checkers' review queue and request pages,
the researchers' jobs, and the admins' overview and audit log."""

from fastapi import FastAPI

from tre.web.pages import admin, research, review_pages, signin


def add_to(app: FastAPI) -> None:
    """Add every page to `app`."""
    for module in (signin, review_pages, research, admin):
        module.router.add_to(app)

"""The JSON API under /api: every endpoint takes a bearer token and calls the service
layer, which applies the same policies as the CLI."""

from fastapi import FastAPI

from tre.web.api import admin, catalog, jobs, reviews


def add_to(app: FastAPI) -> None:
    """Add every API endpoint to `app`."""
    for module in (catalog, admin, jobs, reviews):
        module.router.add_to(app)

"""`tre serve`: the HTTP API and the web pages over the same service layer as the CLI.

app.py           create_app(): the FastAPI application, its error handlers and headers;
                 describe_api(): its OpenAPI description, without a home
state.py         what the app holds for its lifetime (home, cookie key, templates)
auth.py          bearer tokens, signed session cookies, CSRF
errors.py        TreError -> JSON or an error page, with HTTP statuses
schemas.py       the API's request and response bodies
render.py        templates with the shared context; the error page; CSRF checks of forms
views.py         what the API and pages both gather from the service layer
report_view.py   a disclosure report laid out for the review page
api/             the JSON API under /api
pages/           the server-rendered pages
"""

from tre.web.app import create_app

__all__ = ["create_app"]

"""Decisions: may this person do this, is this project, dataset, column or resource allowed,
which disclosure rules apply. Every decision carries all its reasons.

Checks come in pairs (after airlock's permissions module): `*_refusals()` returns the
list of reasons (empty means allowed) and `check_*()` raises PermissionDenied with them.
"""

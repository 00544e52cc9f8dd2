"""The browser stack of tests/browser (a real daphne, a Celery worker, Chromium), for the
attacks that need a real browser. Defined here so that its package-scoped servers belong to
this package and stop when it ends; its autouse fixtures stay in tests/browser.

A package of its own: sync Playwright keeps an event loop running in the main thread while
it lives, and Django then refuses database work in every later synchronous test.
"""

from tests.browser.conftest import (  # noqa: F401
    browser,
    context,
    live_url,
    page,
    playwright,
    stack_dir,
    stack_env,
    video_worker,
    viewport,
)

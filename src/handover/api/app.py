"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from handover import __version__, bootstrap
from handover.api import (
    carrier,
    cases,
    certificates,
    check,
    log,
    numbers,
    oauth,
    ops,
    people,
    platform,
    problems,
    ranges,
    ssf,
    subscriber,
)
from handover.api.edge import EdgeMiddleware
from handover.api.limits import BodyLimitMiddleware, body_limits
from handover.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = bootstrap.keep_fresh(app.state.check_index, settings.check_refresh_seconds)
        app.state.check_refresh_each_request = stop is None
        try:
            yield
        finally:
            if stop is not None:
                stop()
                app.state.check_refresh_each_request = True

    app = FastAPI(
        title="Handover",
        version=__version__,
        summary="A clearinghouse for mobile phone numbers that change hands",
        lifespan=lifespan,
    )
    engine = bootstrap.engine_for(settings)
    app.state.settings = settings
    app.state.engine = engine
    app.state.uow_factory = bootstrap.uow_factory(settings, engine)
    app.state.report_sorters = bootstrap.report_sorters(settings)
    app.state.tokens = bootstrap.token_issuer(settings)
    app.state.signer = bootstrap.checkpoint_signer(settings)
    app.state.receipt_signer = bootstrap.receipt_signer(settings)
    app.state.check_index = bootstrap.check_index(settings, engine)
    app.state.set_signer = bootstrap.set_signer(settings)
    app.state.transmitter = bootstrap.transmitter(settings)
    app.state.senders = bootstrap.message_senders(settings)
    app.state.sign_in_key = bootstrap.sign_in_key(settings)
    #: True until the lifespan starts a background refresh of the index (if it has one).
    app.state.check_refresh_each_request = True
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware, limits=body_limits(settings))
    app.add_middleware(EdgeMiddleware)
    app.include_router(ops.router)
    app.include_router(oauth.router)
    app.include_router(carrier.router)
    app.include_router(numbers.router)
    app.include_router(numbers.notices)
    app.include_router(log.router)
    app.include_router(check.router)
    app.include_router(check.camara)
    app.include_router(ssf.router)
    app.include_router(platform.router)
    app.include_router(subscriber.router)
    app.include_router(people.router)
    app.include_router(certificates.router)
    app.include_router(cases.owner)
    app.include_router(cases.platform)
    app.include_router(cases.regulator)
    app.include_router(ranges.regulator)

    generate = app.openapi
    app.openapi = lambda: problems.document(generate())  # type: ignore[method-assign]

    return app

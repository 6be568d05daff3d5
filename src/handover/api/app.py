"""The ASGI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from handover import __version__, bootstrap
from handover.adapters.storage.engine import make_engine
from handover.api import carrier, log, numbers, oauth, problems
from handover.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Handover",
        version=__version__,
        summary="A clearinghouse for mobile phone numbers that change hands",
    )
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.uow_factory = bootstrap.uow_factory(settings, engine)
    app.state.tokens = bootstrap.token_issuer(settings)
    app.state.signer = bootstrap.checkpoint_signer(settings)
    problems.install(app)
    app.include_router(oauth.router)
    app.include_router(carrier.router)
    app.include_router(numbers.router)
    app.include_router(log.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app

"""The HTTP API: FastAPI routers per role that translate HTTP to service calls."""

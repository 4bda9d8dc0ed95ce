"""The REST API (FastAPI): routes, request schemas, auth and error mapping."""

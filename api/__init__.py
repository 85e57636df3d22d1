"""FastAPI prediction service over the saved models (``uvicorn api.app:app``)."""

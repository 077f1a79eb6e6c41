"""The "Gemini batch" view of the Airflow UI: a read-only FastAPI app on the API server (plugin.py)."""

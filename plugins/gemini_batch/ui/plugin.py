"""The Airflow plugin of the Gemini batch view: its FastAPI app and its entry in the UI's menu.

Registered through the distribution's ``airflow.plugins`` entry point (pyproject.toml), never as
a loose file under plugins/ (see plugins/.airflowignore). The app is mounted at :data:`URL_PREFIX`
on the API server; the UI shows it in an iframe under "Browse".
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from gemini_batch.links import VIEW_PREFIX

#: Where the view's app is mounted on the API server (links.py builds job links under it).
URL_PREFIX = VIEW_PREFIX


class GeminiBatchViewPlugin(AirflowPlugin):
    """The "Gemini batch" view: batch jobs of recent runs, a job's page, a per-day chart."""

    name = "gemini_batch_view"

    @property
    def fastapi_apps(self) -> list[dict]:  # type: ignore[override]
        from gemini_batch.ui.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Gemini batch"}]

    external_views = [
        {
            "name": "Gemini batch",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "gemini-batch",
        }
    ]

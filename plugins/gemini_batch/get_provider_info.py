"""What Airflow's ProvidersManager learns about this distribution (``apache_airflow_provider`` entry point).

Invariants:
- Importing this module and calling :func:`get_provider_info` imports neither Airflow nor
  google-genai: the providers manager calls it in every Airflow process, before any hook is used.
- The connection form is declared here (``ui-field-behaviour``, ``conn-fields``), as Airflow 3.2+
  asks; the hook's ``get_ui_field_behaviour`` / ``get_connection_form_widgets`` methods are
  deprecated there and are not read when the provider info declares the form. The API server's
  ``/ui/connections/hook_meta`` is built from this metadata without importing the hook.
- ``package-name`` is the distribution's name (Airflow refuses a mismatch) and the version is the
  package's ``__version__`` (pyproject.toml reads the same line).
- ``connection-type``, ``hook-name`` and the hook class agree with ``GeminiApiHook``'s attributes
  (a test holds them together), and ``genai_base_url`` is the extra the hook reads
  (``gemini_batch.hooks.BASE_URL_EXTRA``).
"""

from __future__ import annotations

from typing import Any

from gemini_batch import __version__

PACKAGE_NAME = "gemini-batch-airflow"
INTEGRATION = "Gemini Batch Prediction"


def get_provider_info() -> dict[str, Any]:
    """The provider info dict (validated by Airflow against its ``provider_info.schema.json``)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Gemini Batch",
        "description": (
            "Retry-safe, deferrable Gemini batch prediction (Vertex AI batch prediction jobs and the "
            "Gemini API Batch Mode) through google-genai: operators, a sensor, a trigger, a hook and "
            "the `gemini_api` connection type."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://ai.google.dev/gemini-api/docs/batch-mode",
                "tags": ["gcp"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["gemini_batch.operators", "gemini_batch.job_operators"],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["gemini_batch.sensors"]}],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["gemini_batch.hooks"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["gemini_batch.triggers"]}],
        "connection-types": [
            {
                "connection-type": "gemini_api",
                "hook-class-name": "gemini_batch.hooks.GeminiApiHook",
                "hook-name": "Gemini API",
                "ui-field-behaviour": {
                    # The key is the whole credential; the endpoint is an extra (genai_base_url),
                    # so the generic host/port/login/schema fields would only mislead.
                    "hidden-fields": ["host", "schema", "port", "login", "extra"],
                    "relabeling": {"password": "API key"},
                    "placeholders": {
                        "password": "Gemini API key (from Google AI Studio)",
                        "genai_base_url": "https://generativelanguage.googleapis.com",
                        "api_version": "v1beta",
                    },
                },
                "conn-fields": {
                    "genai_base_url": {
                        "label": "Endpoint override",
                        "description": "Base URL of the Gemini API, e.g. a private endpoint or the local "
                        "stack's emulator. Empty: Google's endpoint.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "api_version": {
                        "label": "API version",
                        "description": "The API version in request paths. Empty: google-genai's default.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
        "extra-links": ["gemini_batch.links.GeminiBatchJobLink"],
    }

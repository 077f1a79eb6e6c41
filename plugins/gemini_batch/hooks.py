"""GeminiBatchHook: one google-genai client per connection, with sync and async job methods.

Invariants:
- One ``genai.Client`` per (backend, connection, project, location, impersonation chain) per
  process, kept referenced in a module cache (``Client.__del__`` closes its pool). Thousands of
  triggers in one triggerer share it; its async side opens one HTTP session per event loop,
  lazily, inside the loop that first uses it.
- Credentials come from the connection only: Vertex AI through providers-google's
  ``GoogleBaseHook`` (service account, ADC, impersonation), the Gemini API key from the
  ``gemini_api`` connection's password. No secret is a method argument, an attribute shown in
  a repr, or a log line.
- The hook never retries ``create`` by itself (a lost response would make a second, billed job);
  the operator decides, after looking the job up by identity.
- Async methods never block the event loop: building a client (connection lookup, credential
  load) runs in a worker thread, HTTP goes through ``client.aio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from gemini_batch import compat
from gemini_batch.api_errors import error_kind, http_status
from gemini_batch.backends import BACKENDS, DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID, Backend
from gemini_batch.exceptions import GeminiBatchConfigError, GeminiBatchJobNotFound
from gemini_batch.job_task import JobTask
from gemini_batch.sources import JobRef

if TYPE_CHECKING:
    from google import genai
    from google.genai import types

    from gemini_batch.identity import WorkIdentity
    from gemini_batch.sources import BatchSource

#: The extra (on either connection type) that overrides the service endpoint.
BASE_URL_EXTRA = "genai_base_url"
#: Vertex AI rejects AnonymousCredentials in google-genai ("cannot be refreshed"); an anonymous
#: connection (the local stack) gets a static bearer token instead. Not a secret.
ANONYMOUS_TOKEN = "anonymous-local-token"


@dataclass(frozen=True)
class ClientSettings:
    """What a client talks to; no secrets, safe to log and to build console links from.

    :param backend: ``vertex`` or ``gemini_api``.
    :param conn_id: the Airflow connection id.
    :param project: the Google Cloud project (Vertex AI), else None.
    :param location: the Vertex AI location (``us-central1``, ``global``...), else None.
    :param base_url: the endpoint override from the connection extra, else None.
    """

    backend: Backend
    conn_id: str
    project: str | None = None
    location: str | None = None
    base_url: str | None = None


@dataclass
class _ClientEntry:
    client: Any
    settings: ClientSettings


_CLIENTS: dict[tuple, _ClientEntry] = {}
_CLIENTS_LOCK = threading.Lock()


def clear_client_cache() -> None:
    """Forget every cached client (tests; a connection edited in a long-lived process)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


def _chain_key(chain: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    if chain is None or isinstance(chain, str):
        return chain
    return tuple(chain)


class GeminiBatchHook(BaseHook):
    """Create, get, list, cancel, delete and find Gemini batch jobs on Vertex AI or the Gemini API.

    .. seealso:: docs/design.md, "Product contracts" (connections).

    :param backend: Required. ``vertex`` (Google Cloud connection) or ``gemini_api`` (API key
        connection).
    :param conn_id: Optional. The connection id; defaults to ``google_cloud_default`` for Vertex AI
        and ``gemini_api_default`` for the Gemini API. Both connection types accept the extra
        ``genai_base_url`` (endpoint override, e.g. the local stack or a private endpoint).
    :param project_id: Optional (Vertex AI). Defaults to the connection's project.
    :param location: Optional (Vertex AI). Defaults to the connection extra ``location``; one of the
        two is required. ``global`` is accepted.
    :param impersonation_chain: Optional (Vertex AI). A service account, or a chain of them, to
        impersonate, as in every providers-google hook.
    """

    #: Per-request HTTP timeout (seconds): a hung call cannot hang a worker or the triggerer.
    HTTP_TIMEOUT_S = 120
    #: Page size when listing.
    LIST_PAGE_SIZE = 100

    def __init__(
        self,
        backend: Backend,
        conn_id: str | None = None,
        *,
        project_id: str | None = None,
        location: str | None = None,
        impersonation_chain: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if backend not in BACKENDS:
            raise GeminiBatchConfigError(f"backend must be one of {BACKENDS}, got {backend!r}.")
        if backend == "gemini_api" and (project_id or impersonation_chain):
            raise GeminiBatchConfigError(
                "project_id and impersonation_chain apply to Vertex AI only; the Gemini API "
                "authenticates with the key of its connection. Remove them."
            )
        self.backend: Backend = backend
        self.conn_id = conn_id or (DEFAULT_GCP_CONN_ID if backend == "vertex" else DEFAULT_GEMINI_API_CONN_ID)
        self.project_id = project_id
        self.location = location
        self.impersonation_chain = impersonation_chain

    # ------------------------------------------------------------------ clients

    @property
    def _key(self) -> tuple:
        return (
            self.backend,
            self.conn_id,
            self.project_id,
            self.location,
            _chain_key(self.impersonation_chain),
        )

    def _entry(self) -> _ClientEntry:
        entry = _CLIENTS.get(self._key)
        if entry is None:
            with _CLIENTS_LOCK:
                entry = _CLIENTS.get(self._key)
                if entry is None:
                    entry = self._build_entry()
                    _CLIENTS[self._key] = entry
        return entry

    async def _aentry(self) -> _ClientEntry:
        entry = _CLIENTS.get(self._key)
        if entry is None:
            # Connection lookup and credential loading are sync (and may do I/O): off the loop.
            entry = await asyncio.to_thread(self._entry)
        return entry

    def get_conn(self) -> genai.Client:
        """The shared ``google.genai.Client`` of this connection (built once per process)."""
        return self._entry().client

    async def aget_conn(self) -> genai.Client:
        """As :meth:`get_conn`, without blocking the event loop."""
        return (await self._aentry()).client

    @property
    def settings(self) -> ClientSettings:
        """Project, location and endpoint the client talks to (builds the client if needed)."""
        return self._entry().settings

    async def asettings(self) -> ClientSettings:
        return (await self._aentry()).settings

    def invalidate(self) -> None:
        """Drop this connection's cached client; the next call rebuilds it from the connection."""
        with _CLIENTS_LOCK:
            _CLIENTS.pop(self._key, None)

    def _connection_missing(self, conn_type: str, how: str) -> GeminiBatchConfigError:
        return GeminiBatchConfigError(
            f"Airflow connection {self.conn_id!r} is not defined. Create a {conn_type} connection "
            f"named {self.conn_id!r} ({how}), or pass another connection id."
        )

    def _http_options(self, base_url: str | None) -> types.HttpOptions:
        from google.genai import types

        options: dict[str, Any] = {"timeout": int(self.HTTP_TIMEOUT_S * 1000)}
        if base_url:
            options["base_url"] = base_url
        return types.HttpOptions(**options)

    def _build_entry(self) -> _ClientEntry:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            if self.backend == "vertex":
                return self._build_vertex()
            return self._build_gemini_api()
        except AirflowNotFoundException:
            if self.backend == "vertex":
                raise self._connection_missing(
                    "google_cloud_platform", "service account key, ADC or impersonation"
                ) from None
            raise self._connection_missing("gemini_api", "the API key in its password") from None

    def _build_vertex(self) -> _ClientEntry:
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook, get_field
        from google import genai
        from google.auth.credentials import AnonymousCredentials

        google_hook = GoogleBaseHook(gcp_conn_id=self.conn_id, impersonation_chain=self.impersonation_chain)
        credentials, conn_project = google_hook.get_credentials_and_project_id()
        extras = google_hook.extras
        if isinstance(credentials, AnonymousCredentials):
            from google.oauth2.credentials import Credentials

            credentials = Credentials(token=ANONYMOUS_TOKEN)
        project = self.project_id or conn_project
        location = self.location or get_field(extras, "location")
        if not project:
            raise GeminiBatchConfigError(
                f"No Google Cloud project for Vertex AI: pass project_id=, or set 'project' in the extra "
                f"of connection {self.conn_id!r}."
            )
        if not location:
            raise GeminiBatchConfigError(
                f"No Vertex AI location: pass location= (e.g. 'us-central1' or 'global'), or set "
                f"'location' in the extra of connection {self.conn_id!r}."
            )
        base_url = get_field(extras, BASE_URL_EXTRA)
        client = genai.Client(
            vertexai=True,
            credentials=credentials,
            project=project,
            location=location,
            http_options=self._http_options(base_url),
        )
        settings = ClientSettings("vertex", self.conn_id, project, location, base_url)
        self.log.info(
            "Vertex AI client for connection %s: project %s, location %s%s",
            self.conn_id,
            project,
            location,
            f", endpoint {base_url}" if base_url else "",
        )
        return _ClientEntry(client, settings)

    def _build_gemini_api(self) -> _ClientEntry:
        from google import genai

        conn = self.get_connection(self.conn_id)
        api_key = conn.password
        if not api_key:
            raise GeminiBatchConfigError(
                f"Connection {self.conn_id!r} has no API key: put the Gemini API key in its password field."
            )
        extras = conn.extra_dejson or {}
        base_url = extras.get(BASE_URL_EXTRA) or None
        http_options = self._http_options(base_url)
        if extras.get("api_version"):
            http_options.api_version = str(extras["api_version"])
        client = genai.Client(vertexai=False, api_key=api_key, http_options=http_options)
        settings = ClientSettings("gemini_api", self.conn_id, None, None, base_url)
        self.log.info(
            "Gemini API client for connection %s%s",
            self.conn_id,
            f", endpoint {base_url}" if base_url else "",
        )
        return _ClientEntry(client, settings)

    # ------------------------------------------------------------------ helpers

    def _ref(self, name: str) -> JobRef:
        return JobRef.parse(name, backend=self.backend)

    @staticmethod
    def build_create_config(
        backend: Backend,
        *,
        display_name: str,
        dest: str | None = None,
        labels: Mapping[str, str] | None = None,
        create_config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The SDK ``CreateBatchJobConfig`` dict: the user's config plus display name, dest and labels.

        Labels travel in ``http_options.extra_body.labels`` (the SDK config has no labels field);
        the Gemini API has no labels, so they are dropped there.
        """
        config: dict[str, Any] = {k: v for k, v in dict(create_config or {}).items() if v is not None}
        config["display_name"] = display_name
        if dest:
            config["dest"] = dest
        if labels and backend == "vertex":
            http_options = dict(config.get("http_options") or {})
            extra_body = dict(http_options.get("extra_body") or {})
            extra_body["labels"] = {**dict(extra_body.get("labels") or {}), **dict(labels)}
            http_options["extra_body"] = extra_body
            config["http_options"] = http_options
        return config

    def _embeds_through_gemini_api(self, task: JobTask) -> bool:
        """Whether a create goes to ``create_embeddings`` (Gemini API embeddings) rather than ``create``."""
        return task == "embed" and self.backend == "gemini_api"

    def _not_found(self, name: str, exc: BaseException) -> GeminiBatchJobNotFound:
        return GeminiBatchJobNotFound(name, f"{self.backend} answered {http_status(exc)}")

    @contextlib.contextmanager
    def _job_errors(self, name: str) -> Generator[None, None, None]:
        """Around a call on one job (sync or async): a 404 becomes GeminiBatchJobNotFound, and an
        auth error drops the cached client so the next call builds it with fresh credentials."""
        try:
            yield
        except Exception as exc:
            kind = error_kind(exc)
            if kind == "not_found":
                raise self._not_found(name, exc) from exc
            if kind == "auth":
                self.invalidate()
            raise

    # ------------------------------------------------------------------ sync API

    def create_job(
        self,
        *,
        model: str,
        source: BatchSource,
        display_name: str,
        dest: str | None = None,
        labels: Mapping[str, str] | None = None,
        create_config: Mapping[str, Any] | None = None,
        task: JobTask = "generate",
    ) -> types.BatchJob:
        """Submit one batch job (exactly one request; never retried here).

        :param model: Required. The model, e.g. ``gemini-2.5-flash``.
        :param source: Required. A parsed :class:`~gemini_batch.sources.BatchSource`.
        :param display_name: Required. The display name (carries the work identity).
        :param dest: Optional (Vertex AI). ``gs://`` prefix or ``bq://`` dataset/table for results.
        :param labels: Optional (Vertex AI). Job labels.
        :param create_config: Optional. Further ``CreateBatchJobConfig`` fields (e.g. webhook_config).
        :param task: Optional. ``generate`` (default) or ``embed``. On the Gemini API an embedding job
            is ``client.batches.create_embeddings`` (``asyncBatchEmbedContent``); on Vertex AI the model
            makes the job an embedding job, so the call is the same ``batches.create``.
        """
        config = self.build_create_config(
            self.backend, display_name=display_name, dest=dest, labels=labels, create_config=create_config
        )
        batches = self.get_conn().batches
        if self._embeds_through_gemini_api(task):
            with _experimental_embeddings():
                return batches.create_embeddings(model=model, src=source.sdk_embeddings_src(), config=config)
        return batches.create(model=model, src=source.sdk_src(), config=config)

    def get_job(self, name: str) -> types.BatchJob:
        """Get a job by name.

        :raises GeminiBatchJobNotFound: when the service answers 404.
        """
        ref = self._ref(name)
        client = self.get_conn()
        with self._job_errors(name):
            if self.backend == "gemini_api":
                # google-genai drops the row counts and the error of a Gemini API batch (compat.py)
                return compat.get_gemini_batch(client, ref.name)
            return client.batches.get(name=name)

    def iter_jobs(
        self, *, filter: str | None = None, page_size: int | None = None
    ) -> Iterator[types.BatchJob]:
        """Every job, page after page.

        :param filter: Optional (Vertex AI only). A list filter, e.g. ``labels.team="ml"``.
        :param page_size: Optional. Jobs per page.
        """
        if filter and self.backend == "gemini_api":
            raise GeminiBatchConfigError("The Gemini API cannot filter batch lists; remove filter.")
        config: dict[str, Any] = {"page_size": page_size or self.LIST_PAGE_SIZE}
        if filter:
            config["filter"] = filter
        yield from self.get_conn().batches.list(config=config)

    def list_jobs(
        self, *, filter: str | None = None, page_size: int | None = None, limit: int | None = None
    ) -> list[types.BatchJob]:
        """As :meth:`iter_jobs`, as a list of at most ``limit`` jobs."""
        jobs = []
        for job in self.iter_jobs(filter=filter, page_size=page_size):
            jobs.append(job)
            if limit is not None and len(jobs) >= limit:
                break
        return jobs

    def cancel_job(self, name: str) -> None:
        """Ask the service to cancel a job (it moves to CANCELLING, then CANCELLED).

        :raises GeminiBatchJobNotFound: when the service answers 404.
        """
        self._ref(name)
        with self._job_errors(name):
            self.get_conn().batches.cancel(name=name)

    def delete_job(self, name: str) -> None:
        """Delete a job resource.

        :raises GeminiBatchJobNotFound: when the service answers 404.
        """
        self._ref(name)
        with self._job_errors(name):
            self.get_conn().batches.delete(name=name)

    def find_jobs_by_identity(self, identity: WorkIdentity) -> list[types.BatchJob]:
        """Jobs that carry ``identity``'s tag, newest first (Vertex AI filters by label server-side)."""
        filter = identity.vertex_list_filter() if self.backend == "vertex" else None
        jobs = [job for job in self.iter_jobs(filter=filter) if identity.owns(job)]
        return _newest_first(jobs)

    def test_connection(self) -> tuple[bool, str]:
        """List one job: proves endpoint, credentials and permissions with one cheap real call.

        The client is built from the connection as it is now (never the cached one: the Test button
        checks what the user just typed). The message names the problem and never holds the key.
        """
        try:
            client = self._build_entry().client
            client.batches.list(config={"page_size": 1})
        except Exception as exc:
            return False, self._connection_test_failure(exc)
        return True, f"Listed {self.backend} batch jobs"

    def _connection_test_failure(self, exc: BaseException) -> str:
        status = http_status(exc)
        if isinstance(exc, GeminiBatchConfigError):
            problem = "the connection is incomplete"
        elif status in (401, 403) or "API_KEY_INVALID" in str(exc):  # a wrong key is a 400
            problem = f"the service refused the credentials (HTTP {status})"
        elif status is not None:
            problem = f"the service answered HTTP {status}"
        elif error_kind(exc) == "transient":
            problem = f"no answer from the endpoint ({type(exc).__name__})"
        else:
            problem = type(exc).__name__
        detail = str(exc)
        for secret in self._connection_secrets():
            detail = detail.replace(secret, "***")
        service = "Vertex AI" if self.backend == "vertex" else "Gemini API"
        return f"{service} connection test failed: {problem}: {detail}"

    def _connection_secrets(self) -> list[str]:
        """The secrets a failure message must not repeat: the Gemini API key (Vertex AI tokens never
        reach an error message)."""
        if self.backend != "gemini_api":
            return []
        try:
            password = self.get_connection(self.conn_id).password
        except Exception:
            return []
        return [password] if password else []

    # ------------------------------------------------------------------ async API

    async def acreate_job(
        self,
        *,
        model: str,
        source: BatchSource,
        display_name: str,
        dest: str | None = None,
        labels: Mapping[str, str] | None = None,
        create_config: Mapping[str, Any] | None = None,
        task: JobTask = "generate",
    ) -> types.BatchJob:
        """As :meth:`create_job`, on the async client."""
        config = self.build_create_config(
            self.backend, display_name=display_name, dest=dest, labels=labels, create_config=create_config
        )
        batches = (await self.aget_conn()).aio.batches
        if self._embeds_through_gemini_api(task):
            with _experimental_embeddings():
                return await batches.create_embeddings(
                    model=model, src=source.sdk_embeddings_src(), config=config
                )
        return await batches.create(model=model, src=source.sdk_src(), config=config)

    async def aget_job(self, name: str) -> types.BatchJob:
        """As :meth:`get_job`, on the async client."""
        ref = self._ref(name)
        client = await self.aget_conn()
        with self._job_errors(name):
            if self.backend == "gemini_api":
                return await compat.aget_gemini_batch(client, ref.name)
            return await client.aio.batches.get(name=name)

    async def aiter_jobs(
        self, *, filter: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[types.BatchJob]:
        """As :meth:`iter_jobs`, on the async client."""
        if filter and self.backend == "gemini_api":
            raise GeminiBatchConfigError("The Gemini API cannot filter batch lists; remove filter.")
        config: dict[str, Any] = {"page_size": page_size or self.LIST_PAGE_SIZE}
        if filter:
            config["filter"] = filter
        client = await self.aget_conn()
        pager = await client.aio.batches.list(config=config)
        async for job in pager:
            yield job

    async def alist_jobs(
        self, *, filter: str | None = None, page_size: int | None = None, limit: int | None = None
    ) -> list[types.BatchJob]:
        """As :meth:`list_jobs`, on the async client."""
        jobs = []
        async for job in self.aiter_jobs(filter=filter, page_size=page_size):
            jobs.append(job)
            if limit is not None and len(jobs) >= limit:
                break
        return jobs

    async def acancel_job(self, name: str) -> None:
        """As :meth:`cancel_job`, on the async client."""
        self._ref(name)
        client = await self.aget_conn()
        with self._job_errors(name):
            await client.aio.batches.cancel(name=name)

    async def adelete_job(self, name: str) -> None:
        """As :meth:`delete_job`, on the async client."""
        self._ref(name)
        client = await self.aget_conn()
        with self._job_errors(name):
            await client.aio.batches.delete(name=name)

    async def afind_jobs_by_identity(self, identity: WorkIdentity) -> list[types.BatchJob]:
        """As :meth:`find_jobs_by_identity`, on the async client."""
        filter = identity.vertex_list_filter() if self.backend == "vertex" else None
        jobs = [job async for job in self.aiter_jobs(filter=filter) if identity.owns(job)]
        return _newest_first(jobs)


class GeminiApiHook(GeminiBatchHook):
    """The ``gemini_api`` connection type (Admin > Connections): a GeminiBatchHook on the Gemini API.

    Airflow builds a connection type's hook as ``hook_class(**{conn_name_attr: conn_id})`` (the
    Test button, ``Connection.get_hook``); GeminiBatchHook takes the backend first, hence this class.
    The connection form itself is declared in :mod:`gemini_batch.get_provider_info`.

    :param gemini_api_conn_id: Optional. The ``gemini_api`` connection: the API key in its password,
        optional extras ``genai_base_url`` (endpoint override) and ``api_version``.
    """

    conn_name_attr = "gemini_api_conn_id"
    default_conn_name = DEFAULT_GEMINI_API_CONN_ID
    conn_type = "gemini_api"
    hook_name = "Gemini API"

    def __init__(self, gemini_api_conn_id: str = DEFAULT_GEMINI_API_CONN_ID, **kwargs: Any) -> None:
        super().__init__("gemini_api", gemini_api_conn_id, **kwargs)
        self.gemini_api_conn_id = gemini_api_conn_id


@contextlib.contextmanager
def _experimental_embeddings() -> Generator[None, None, None]:
    """Silence google-genai's "create_embeddings() is experimental" warning (once per call, in every
    task log); we pin the SDK and test the call against the local stack."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"batches\.create_embeddings\(\) is experimental")
        yield


def _newest_first(jobs: list[Any]) -> list[Any]:
    import datetime as dt

    floor = dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    def key(job: Any) -> dt.datetime:
        created = getattr(job, "create_time", None)
        if created is None:
            return floor
        return created if created.tzinfo else created.replace(tzinfo=dt.timezone.utc)

    return sorted(jobs, key=key, reverse=True)

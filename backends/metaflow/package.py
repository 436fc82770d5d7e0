"""Code packages in Metaflow's S3 datastore: is one there (plan), put one there (apply).

A package's address is its content (``<root>/<Flow>/data/<sha1[:2]>/<sha1>``),
so "there" means "there with these bytes": the plan asks S3 with one
``HeadObject`` per package, and the apply uploads with Metaflow's own
content-addressed store (the driver's ``upload`` mode, in the same isolated
environment as the compile), which writes the object and the metadata
Metaflow's runtime expects (``cas_raw``, ``cas_version``) and skips a package
that is already there.
"""

from __future__ import annotations

import shutil
import threading
from typing import Any

from backends.metaflow.compile import MetaflowWorkspace, run_driver
from backends.metaflow.settings import MetaflowSettings, compile_environment
from planner.errors import BackendError

__all__ = ["PackageStore"]


class PackageStore:
    """Reads (``head``) and writes (``upload``) of code packages for one backend's settings.

    ``workspace`` is the backend's: it holds the packages its compiles built, the only ones ``upload`` sends.
    """

    def __init__(self, settings: MetaflowSettings, workspace: MetaflowWorkspace) -> None:
        self.settings = settings
        self.workspace = workspace
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(profile_name=self.settings.profile) if self.settings.profile else boto3
                region = self.settings.aws.get("region") or None
                self._client = session.client(  # type: ignore[attr-defined]
                    "s3",
                    endpoint_url=self.settings.s3_endpoint_url,
                    region_name=region,
                    config=Config(retries={"mode": "standard", "max_attempts": 4}),
                )
            return self._client

    def head(self, url: str) -> str | None:
        """The object's ETag if the package is in the datastore, else None."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, key = url[len("s3://") :].partition("/")
        try:
            answer = self._s3().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return None
            raise BackendError(
                f"cannot read {url}: {exc.response.get('Error', {}).get('Message') or status}",
                hint="check the AWS credentials flowplan runs with and metaflow.datastore_root",
            ) from None
        except BotoCoreError as exc:
            raise BackendError(f"cannot reach S3 for {url}: {exc}", hint="check metaflow.s3_endpoint_url") from None
        return str(answer.get("ETag", "")).strip('"') or "present"

    def upload(self, url: str, sha: str) -> str:
        """Put the package built for ``sha`` at ``url``; returns its ETag."""
        package = self.workspace.package(sha)
        if package is None:
            raise BackendError(
                f"the code package {sha} was not built by this flowplan run",
                hint="the flow's code changed since it was planned; run flowplan plan (or apply) again",
            )
        if package.url != url:
            raise BackendError(f"package {sha} was built for {package.url}, not {url}")
        workdir = self.workspace.directory("upload-")
        try:
            home = workdir / "metaflow-home"
            home.mkdir()
            env = compile_environment(self.settings.env, str(home), self.settings)
            status = run_driver(
                "upload",
                {"blob": package.path, "flow_name": package.flow_name, "datastore_root": package.datastore_root},
                env,
                self.settings.python,
                workdir,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if not status.get("ok"):
            raise BackendError(f"uploading {url} failed: {status.get('error', {}).get('message', 'unknown error')}")
        if status.get("sha") != sha or status.get("url") != url:
            raise BackendError(f"Metaflow stored the package as {status.get('url')}, expected {url}")
        return self.head(url) or "present"

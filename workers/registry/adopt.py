"""Bring a model trained outside the worker into the registry, artifact and all, so it can
be served, compared, rolled back to and recalled like a version the loop trained."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from schemas import ModelPromoted, ModelRegistered
from workers.errors import RegistryError
from workers.registry.service import SYSTEM, Registry
from workers.retrain.models import ArtifactError, load_model, saved_files
from workers.settings import Settings

# A folder name of its own: not a path, and not the loop's run versions (r<run id>).
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RUN_VERSION = re.compile(r"r\d+")


@dataclass(frozen=True)
class Adopted:
    status: str  # champion (the model had none) or candidate
    event: ModelPromoted | ModelRegistered  # for ol.models: serving clients reload on it


def check_version_name(version: str) -> None:
    if not VERSION_NAME.fullmatch(version) or version in (".", ".."):
        raise RegistryError(
            f"version {version!r}: letters, digits, '.', '_' and '-' only, starting with a "
            "letter or digit"
        )
    if RUN_VERSION.fullmatch(version):
        raise RegistryError(f"version {version!r}: r<number> names are the retrain runs'")


async def adopt_saved(
    settings: Settings, registry: Registry, model: str, version: str, source: Path
) -> Adopted:
    """Copy the model folder at ``source`` (written by a learner's ``save``) into the
    registry's artifacts folder and record it: champion when the model had none, else a
    candidate. Raises ArtifactError or RegistryError, changing nothing."""
    cfg = settings.models.get(model)
    if cfg is None:
        raise RegistryError(f"no model {model!r} is configured")
    check_version_name(version)
    kind, files = await asyncio.to_thread(saved_files, source)
    loaded = await asyncio.to_thread(load_model, source, files)
    if loaded.task != cfg.task:
        raise ArtifactError(f"{source} holds a {loaded.task} model; {model} is {cfg.task}")
    if cfg.features and tuple(loaded.spec.names) != tuple(cfg.features):
        raise ArtifactError(
            f"{source} was trained on features {list(loaded.spec.names)}; {model} declares "
            f"{list(cfg.features)}"
        )
    if await registry.get(model, version) is not None:
        raise RegistryError(f"{model} {version} is already registered")
    root = (settings.artifacts_dir / model).resolve()
    final = root / version
    partial = root / f".{version}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in files:
        shutil.copy2(source / name, partial / name)
    saved_files(partial)  # the copy is whole before it is visible
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    try:
        status = await registry.adopt(
            model, version, kind=kind, artifact_dir=str(final), files=files
        )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    event: ModelPromoted | ModelRegistered = (
        ModelPromoted(
            model=model,
            version=version,
            artifact_dir=str(final),
            files=files,
            by=SYSTEM,
            reason="adopted as the first champion",
        )
        if status == "champion"
        else ModelRegistered(model=model, version=version, status="candidate")
    )
    return Adopted(status, event)

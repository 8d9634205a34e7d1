"""Bring a model trained outside the worker into the registry, artifact and all, so it can
be served, compared, rolled back to and recalled like a version the loop trained."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from workers.errors import RegistryError
from workers.registry.service import Registry
from workers.retrain.models import saved_files
from workers.settings import Settings


async def adopt_saved(
    settings: Settings, registry: Registry, model: str, version: str, source: Path
) -> str:
    """Copy the model folder at ``source`` (written by a learner's ``save``) into the
    registry's artifacts folder and record it. Returns its status: champion when the model
    had none, else candidate. Raises ArtifactError or RegistryError, changing nothing."""
    if model not in settings.models:
        raise RegistryError(f"no model {model!r} is configured")
    kind, files = await asyncio.to_thread(saved_files, source)
    if await registry.get(model, version) is not None:
        raise RegistryError(f"{model} {version} is already registered")
    final = (settings.artifacts_dir / model / version).resolve()
    partial = final.with_name(f".{version}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in files:
        shutil.copy2(source / name, partial / name)
    saved_files(partial)  # the copy is whole before it is visible
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    try:
        return await registry.adopt(model, version, kind=kind, artifact_dir=str(final), files=files)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise

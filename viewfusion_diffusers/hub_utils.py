"""The Hub side of pipelines: fetching a repo or a file, and writing a folder in the Hub format (weights, configs,
model card, `pipeline.py`) without half-written states."""

import json
import os
import shutil
import tempfile

from huggingface_hub import ModelCard, ModelCardData, hf_hub_download, snapshot_download
from huggingface_hub.utils import HFValidationError, validate_repo_id
from safetensors import SafetensorError, safe_open

from .file_utils import atomic_write, current_umask


MODEL_CARD_TEMPLATE = """\
---
{{ card_data }}
---

# {{ title }}

A [ViewFusion](https://arxiv.org/abs/2402.02906) pipeline for novel view synthesis, in the diffusers
format. Load it with [viewfusion-diffusers](https://github.com/viewfusion-diffusers/viewfusion-diffusers):

```python
import PIL.Image
import torch
from viewfusion_diffusers import ViewFusionPipeline

pipe = ViewFusionPipeline.from_pretrained("{{ repo_id }}")
# Your views of one object on a white background, any number of them (transparency becomes white).
views = [PIL.Image.open(path) for path in ("view_front.png", "view_side.png")]
out = pipe(views, target_azimuth=90.0, generator=torch.Generator().manual_seed(0))
out.images[0].save("novel.png")
```

{{ body }}
"""


def make_model_card(
    title: str, body: str, repo_id: str = "path/to/this/folder", datasets: list[str] | None = None
) -> ModelCard:
    """A model card with the Hub's metadata header (license, library, tags, pipeline tag) and `body` as text.

    Example:
        ```py
        >>> card = make_model_card("ViewFusion on pybullet objects", "## Training\\n...")
        >>> card.data.library_name
        'diffusers'
        ```
    """
    card_data = ModelCardData(
        license="mit",
        library_name="diffusers",
        pipeline_tag="image-to-image",
        tags=["viewfusion", "novel-view-synthesis", "diffusers", "multi-view"],
        datasets=datasets,
    )
    return ModelCard.from_template(
        card_data, template_str=MODEL_CARD_TEMPLATE, title=title, body=body, repo_id=repo_id
    )


def save_pipeline_atomically(
    pipeline, folder: str | os.PathLike, model_card: ModelCard | None = None, **save_kwargs
) -> None:
    """`pipeline.save_pretrained(folder, **save_kwargs)` (and the model card as `README.md`), all or nothing.

    `save_kwargs` go to `save_pretrained` (e.g. `variant="fp16"`); each component's folder is replaced whole.

    Everything is written to a temporary folder beside `folder` first and moved into place at the end, so an
    interrupted save never leaves a mix of old and new files. Other files already in `folder` (checkpoints,
    logs) are kept.

    Example:
        ```py
        >>> from viewfusion_diffusers import ViewFusionPipeline
        >>> pipe = ViewFusionPipeline.from_pretrained("pipelines/viewfusion-pybullet-64")
        >>> save_pipeline_atomically(pipe, "outputs/my-pipeline", make_model_card("My pipeline", "..."))
        >>> sorted(os.listdir("outputs/my-pipeline"))
        ['README.md', 'model_index.json', 'pipeline.py', 'scheduler', 'unet']
        ```
    """
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".saving-", dir=folder)
    try:
        pipeline.save_pretrained(staging, **save_kwargs)
        if model_card is not None:
            model_card.save(os.path.join(staging, "README.md"))
        # diffusers writes the weights through a private temporary file (mode 0600): give every file and folder
        # the permissions a plain `open()` / `mkdir()` would, so that a shared or served folder can be read.
        umask = current_umask()
        for parent, folders, files in os.walk(staging):
            for name in folders:
                os.chmod(os.path.join(parent, name), 0o777 & ~umask)
            for name in files:
                os.chmod(os.path.join(parent, name), 0o666 & ~umask)
        # Replace entries one by one; each rename is atomic, and the old copy is only removed afterwards.
        for name in sorted(os.listdir(staging)):
            target = os.path.join(folder, name)
            if os.path.isdir(target):
                old = tempfile.mkdtemp(prefix=".old-", dir=folder)
                os.rename(target, os.path.join(old, name))
                os.rename(os.path.join(staging, name), target)
                shutil.rmtree(old)
            else:
                os.replace(os.path.join(staging, name), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def local_or_hub_file(path: str | os.PathLike, **download_kwargs) -> str:
    """The path of a local file, or of a Hub file fetched with `huggingface_hub.hf_hub_download`.

    A Hub file is named `owner/repo/path/in/repo` or by its address, `https://huggingface.co/owner/repo/blob/main/x.pt`
    (`resolve` in place of `blob` too; the address's revision is used unless `revision` is given). `download_kwargs`
    go to `hf_hub_download` (`revision`, `cache_dir`, `token`, `force_download`, `proxies`, `local_files_only`).

    Example:
        ```py
        >>> local_or_hub_file("bronemos/view-fusion/best_model_all.pt")  # fetched once, then from the Hub cache
        '/root/.cache/huggingface/hub/models--bronemos--view-fusion/snapshots/.../best_model_all.pt'
        ```
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    name = path
    for prefix in ("https://huggingface.co/", "http://huggingface.co/", "hf://"):
        name = name.removeprefix(prefix)
    parts = name.split("/")
    if name != path and len(parts) > 4 and parts[2] in ("blob", "resolve"):
        download_kwargs.setdefault("revision", parts[3])
        parts = parts[:2] + parts[4:]
    if os.path.isdir(path) or len(parts) < 3 or not all(parts):
        raise FileNotFoundError(
            f"No such file {path!r} ({os.path.abspath(path)}), and it does not name a Hub file ('owner/repo/file'): "
            "check the path."
        )
    try:
        return hf_hub_download("/".join(parts[:2]), "/".join(parts[2:]), **download_kwargs)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"No such file {path!r}, and the Hub file {'/'.join(parts[2:])!r} of {'/'.join(parts[:2])!r} could not be "
            f"fetched ({type(error).__name__}: {str(error).splitlines()[0]}). Check the path, or the name and your "
            "connection."
        ) from error


# `from_pretrained` arguments that only matter for fetching from the Hub.
DOWNLOAD_KWARGS = ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision")
# What loading a pipeline reads from a Hub repo: the index, the configs and one set of weights (see
# `download_allow_patterns`); model cards and pictures stay on the Hub.
WEIGHTS_NAME = "diffusion_pytorch_model"


def download_allow_patterns(variant: str | None = None, use_safetensors: bool | None = None) -> list[str]:
    """The `allow_patterns` of `snapshot_download` that fetch what loading a pipeline needs, and nothing else.

    That is `model_index.json`, every component's config, and the weights of `variant` (e.g. `"fp16"`; `None`:
    the default weights), plain or sharded, as safetensors (or `.bin` with `use_safetensors=False`).

    Example:
        ```py
        >>> download_allow_patterns("fp16")[3]
        '*/diffusion_pytorch_model.fp16.safetensors'
        ```
    """
    extension = "bin" if use_safetensors is False else "safetensors"
    infix = f".{variant}" if variant else ""
    return [
        "model_index.json",
        "*/config.json",
        "*/scheduler_config.json",
        f"*/{WEIGHTS_NAME}{infix}.{extension}",
        f"*/{WEIGHTS_NAME}{infix}-*-of-*.{extension}",
        f"*/{WEIGHTS_NAME}.{extension}.index{infix}.json",
    ]


def download_pipeline(
    repo_id: str, variant: str | None = None, use_safetensors: bool | None = None, **download_kwargs
) -> str:
    """The local folder of a Hub pipeline repo, fetched with `snapshot_download` (only what loading needs, see
    `download_allow_patterns`); errors say that the name was not found as a local folder either.

    Example:
        ```py
        >>> download_pipeline("viewfusion-diffusers/viewfusion-pybullet-64", variant="fp16")
        '/root/.cache/huggingface/hub/models--viewfusion-diffusers--viewfusion-pybullet-64/snapshots/...'
        ```
    """
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise FileNotFoundError(
            f"No such folder {repo_id!r} ({os.path.abspath(repo_id)}), and it is not a Hub repo id ('name/repo'): "
            "check the path."
        ) from None
    try:
        return snapshot_download(
            repo_id, allow_patterns=download_allow_patterns(variant, use_safetensors), **download_kwargs
        )
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"No such folder {repo_id!r} ({os.path.abspath(repo_id)}), and the Hub repo {repo_id!r} could not be "
            "fetched "
            f"({type(error).__name__}: {error}). Check the path, or the repo id and your connection."
        ) from error


# `DiffusionPipeline.from_pretrained(folder, custom_pipeline=folder, trust_remote_code=True)` loads the pipeline
# class from a folder's `pipeline.py`, diffusers' way for pipelines whose class lives outside diffusers.
CUSTOM_PIPELINE_FILE = "pipeline.py"
CUSTOM_PIPELINE_CODE = '''\
"""This folder's pipeline class, for `DiffusionPipeline.from_pretrained(folder_or_repo_id,
custom_pipeline=folder_or_repo_id, trust_remote_code=True)`: the pipeline of the installed viewfusion-diffusers
package (`pip install viewfusion-diffusers`), which `ViewFusionPipeline.from_pretrained` loads without this file."""

from viewfusion_diffusers import ViewFusionPipeline

__all__ = ["ViewFusionPipeline"]
'''


def write_custom_pipeline_file(folder: str | os.PathLike) -> None:
    """Write the folder's `pipeline.py` (see `CUSTOM_PIPELINE_CODE`), so diffusers' own loader finds the class.

    Example:
        ```py
        >>> from diffusers import DiffusionPipeline
        >>> _ = shutil.copytree("pipelines/viewfusion-pybullet-64", "outputs/my-pipeline")
        >>> write_custom_pipeline_file("outputs/my-pipeline")  # save_pretrained writes it too
        >>> pipe = DiffusionPipeline.from_pretrained("outputs/my-pipeline", custom_pipeline="outputs/my-pipeline",
        ...                                          trust_remote_code=True)
        >>> type(pipe).__name__
        'ViewFusionPipeline'
        ```
    """
    with atomic_write(os.path.join(folder, CUSTOM_PIPELINE_FILE), "w") as file:
        file.write(CUSTOM_PIPELINE_CODE)


class PipelineFolderError(ValueError):
    """A pipeline folder with a damaged or missing file; the message names the file and how to get a good one."""


REPAIR_HINT = (
    "download the folder again (from the Hub: force_download=True), or write it again with save_pretrained "
    "(or `viewfusion convert` for a converted checkpoint)"
)


def read_json_file(path: str) -> dict:
    """A config file of a pipeline folder, or a `PipelineFolderError` naming it when it is missing or not JSON.

    Example:
        ```py
        >>> read_json_file("pipelines/viewfusion-pybullet-64/model_index.json")["_class_name"]
        'ViewFusionPipeline'
        ```
    """
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError as error:
        raise PipelineFolderError(f"{path} is missing; {REPAIR_HINT}.") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PipelineFolderError(f"{path} is not valid JSON ({error}); {REPAIR_HINT}.") from error
    if not isinstance(config, dict):
        raise PipelineFolderError(f"{path} holds a JSON {type(config).__name__}, not an object; {REPAIR_HINT}.")
    return config


def check_safetensors_file(path: str) -> None:
    """Raise a `PipelineFolderError` naming `path` unless safetensors reads its header and finds every tensor inside
    the file (a truncated download fails here, before diffusers' loader, whose error says little).

    Example:
        ```py
        >>> check_safetensors_file("pipelines/viewfusion-pybullet-64/unet/diffusion_pytorch_model.safetensors")
        ```
    """
    try:
        # Opening reads only the header and checks that the tensors' byte ranges cover the rest of the file.
        with safe_open(path, framework="pt"):
            pass
    except SafetensorError as error:
        raise PipelineFolderError(
            f"{path} is truncated or not a safetensors file ({os.path.getsize(path)} bytes; {error}); {REPAIR_HINT}."
        ) from error


def check_pipeline_folder(folder: str) -> dict:
    """Read a pipeline folder's `model_index.json` and check each component's config and safetensors weights,
    so that a damaged file is reported in one line naming it; returns the index.

    Example:
        ```py
        >>> check_pipeline_folder("pipelines/viewfusion-pybullet-64")["_class_name"]
        'ViewFusionPipeline'
        ```
    """
    index = read_json_file(os.path.join(folder, "model_index.json"))
    # Entries such as `"unet": ["viewfusion_diffusers", "ViewFusionUNet2DModel"]`; `[null, null]` is a component
    # saved as absent, with no folder.
    components = [
        name
        for name, value in index.items()
        if not name.startswith("_") and isinstance(value, list) and any(part is not None for part in value)
    ]
    for component in components:
        component_folder = os.path.join(folder, component)
        if not os.path.isdir(component_folder):
            raise PipelineFolderError(f"{component_folder} is missing (model_index.json names it); {REPAIR_HINT}.")
        configs = [
            n for n in ("config.json", "scheduler_config.json") if os.path.exists(os.path.join(component_folder, n))
        ]
        if not configs:
            raise PipelineFolderError(f"{component_folder} has no config.json; {REPAIR_HINT}.")
        read_json_file(os.path.join(component_folder, configs[0]))
        for name in sorted(os.listdir(component_folder)):
            if name.endswith(".safetensors"):
                check_safetensors_file(os.path.join(component_folder, name))
    return index

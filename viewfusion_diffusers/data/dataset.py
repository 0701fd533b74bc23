"""Multi-view datasets in the NMR layout, the evaluation set, and a Hugging Face `datasets` export.

One reader, [`NMRDataset`], serves the real NMR renders (plain and `softras_` split lists) and the renders of
`viewfusion-render`; [`HFMultiViewDataset`] serves the same objects from a `datasets.Dataset`. Both expose
`objects` and `load_views(index)`, so the evaluation set ([`make_eval_samples`]) and the training batches
(`samplers.ViewFusionTrainDataset`, `samplers.InMemoryViewSampler`) work on either.

Bad data raises a `ValueError` that names the file or object (a missing, corrupt or wrongly sized PNG, an
object with fewer than 24 views, a missing or empty split list, an unknown category); nothing is skipped
silently. Objects are checked when they are read, so a dataset of thousands of objects opens instantly.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import yaml

from ..constants import NUM_VIEWS, view_azimuth
from ..dependencies import import_optional
from ..image_processor import ViewProcessor


AZIMUTHS_DEGREES = tuple(view_azimuth(k) for k in range(NUM_VIEWS))


def read_view(path: Path) -> np.ndarray:
    """One view as `(H, W, 3)` uint8 RGB; transparency is composited on white exactly as for sampling
    ([`ViewProcessor.composite_on_white`]).

    Example:
        ```py
        >>> read_view(Path("data/pybullet-64/named/duck_vhacd/image/0000.png")).shape
        (64, 64, 3)
        ```
    """
    if not path.is_file():
        raise ValueError(f"Missing view {path}.")
    try:
        with PIL.Image.open(path) as image:
            image.load()
            return np.asarray(ViewProcessor.composite_on_white(image))
    except (PIL.UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"Cannot read view {path}: {error}") from error


class NMRDataset:
    """The objects of one split of a dataset in the NMR layout (real NMR or rendered by `viewfusion-render`).

    Args:
        root: the dataset root (holding `metadata.yaml` and one folder per category).
        split (`str`, defaults to `"train"`): the split list to read, `<category>/<list_prefix><split>.lst`.
        categories (`list[str]`, *optional*): category folders to use (default: every folder with that list).
        list_prefix (`str`, defaults to `""`): `"softras_"` reads NMR's `softras_train.lst` etc.

    Example:
        ```py
        >>> dataset = NMRDataset("data/pybullet-64", split="test")
        >>> dataset.objects  # (category, object id), category by category
        [('named', 'table_square'), ('random_urdfs', '004')]
        >>> views = dataset.load_views(0)  # view k at azimuth 15 k degrees
        >>> views.shape, views.dtype
        (torch.Size([24, 3, 64, 64]), torch.uint8)
        ```
    """

    azimuths_degrees = AZIMUTHS_DEGREES

    def __init__(self, root, split: str = "train", categories: list[str] | None = None, list_prefix: str = ""):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"Dataset folder {self.root} does not exist.")
        list_name = f"{list_prefix}{split}.lst"
        if categories is None:
            categories = sorted(d.name for d in self.root.iterdir() if (d / list_name).is_file())
            if not categories:
                raise ValueError(f"No category folder in {self.root} has a split list {list_name!r}.")
        self.objects: list[tuple[str, str]] = []
        for category in categories:
            list_path = self.root / category / list_name
            if not (self.root / category).is_dir():
                raise ValueError(f"Category {category!r} does not exist in {self.root}.")
            if not list_path.is_file():
                raise ValueError(f"Split list {list_path} does not exist.")
            ids = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
            if not ids:
                raise ValueError(f"Split list {list_path} is empty.")
            self.objects += [(category, object_id) for object_id in ids]
        metadata_path = self.root / "metadata.yaml"
        metadata = yaml.safe_load(metadata_path.read_text()) if metadata_path.is_file() else {}
        self.category_names = {c: (metadata or {}).get(c, {}).get("name", c) for c in categories}

    def __len__(self) -> int:
        return len(self.objects)

    def object_dir(self, index: int) -> Path:
        category, object_id = self.objects[index]
        return self.root / category / object_id

    def load_views(self, index: int, view_indices=None) -> torch.Tensor:
        """The object's views as a `(V, 3, H, W)` uint8 tensor: all 24 (view `k` at azimuth `view_azimuth(k)`),
        or only `view_indices`, in that order."""
        image_dir = self.object_dir(index) / "image"
        if not image_dir.is_dir():
            raise ValueError(f"Object {self.objects[index]} has no image folder {image_dir}.")
        files = sorted(p for p in image_dir.iterdir() if p.suffix.lower() == ".png")
        if len(files) < NUM_VIEWS:
            raise ValueError(f"Object {image_dir.parent} has {len(files)} views; {NUM_VIEWS} are needed.")
        view_indices = range(NUM_VIEWS) if view_indices is None else view_indices
        views = [read_view(image_dir / f"{int(k):04d}.png") for k in view_indices]
        sizes = {v.shape for v in views}
        if len(sizes) != 1 or views[0].shape[0] != views[0].shape[1]:
            raise ValueError(
                f"Views of {image_dir.parent} have sizes {sorted(sizes)}; all must be the same square size."
            )
        return torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2).contiguous()

    def load_cameras(self, index: int) -> dict[str, np.ndarray]:
        """The object's `cameras.npz` as a dict of 4x4 arrays."""
        with np.load(self.object_dir(index) / "cameras.npz") as cameras:
            return {key: cameras[key] for key in cameras.files}


class HFMultiViewDataset:
    """The [`NMRDataset`] interface over a `datasets.Dataset` made by [`to_hf_dataset`] (e.g. from the Hub).

    Example:
        ```py
        >>> from datasets import load_dataset
        >>> objects = HFMultiViewDataset(load_dataset("your-name/pybullet-views", split="train"))
        >>> ViewFusionTrainDataset(objects)[0].input_views.shape
        ```
    """

    azimuths_degrees = AZIMUTHS_DEGREES

    def __init__(self, hf_dataset):
        self.hf_dataset = hf_dataset
        self.objects = list(zip(hf_dataset["category"], hf_dataset["object_id"]))

    def __len__(self) -> int:
        return len(self.objects)

    def load_views(self, index: int, view_indices=None) -> torch.Tensor:
        """The object's views as `(V, 3, H, W)` uint8, transparency composited on white as [`read_view`] does:
        all 24 in order, or only `view_indices`, in that order."""
        images = self.hf_dataset[index]["views"]
        if len(images) < NUM_VIEWS:
            raise ValueError(f"Object {self.objects[index]} has {len(images)} views; {NUM_VIEWS} are needed.")
        if view_indices is not None:
            images = [images[int(k)] for k in view_indices]
        views = [np.asarray(ViewProcessor.composite_on_white(image)) for image in images]
        sizes = {v.shape for v in views}
        if len(sizes) != 1 or views[0].shape[0] != views[0].shape[1]:
            raise ValueError(
                f"Views of {self.objects[index]} have sizes {sorted(sizes)}; all must be the same square size."
            )
        return torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2).contiguous()


def to_hf_dataset(dataset: NMRDataset):
    """Export the objects as a `datasets.Dataset`: one row per object, its 24 views as `Image` features.

    Columns: `category`, `object_id`, `views` (24 images), `azimuths` (degrees). `push_to_hub` it, and read it
    back with [`HFMultiViewDataset`].

    Example:
        ```py
        >>> to_hf_dataset(NMRDataset("data/pybullet-64", split="train")).push_to_hub("your-name/pybullet-views")
        ```
    """
    datasets = import_optional("datasets", "train")

    features = datasets.Features(
        {
            "category": datasets.Value("string"),
            "object_id": datasets.Value("string"),
            "views": datasets.Sequence(datasets.Image()),
            "azimuths": datasets.Sequence(datasets.Value("float32")),
        }
    )

    def rows():
        for index, (category, object_id) in enumerate(dataset.objects):
            views = dataset.load_views(index).permute(0, 2, 3, 1).numpy()
            yield {
                "category": category,
                "object_id": object_id,
                "views": [PIL.Image.fromarray(v) for v in views],
                "azimuths": list(AZIMUTHS_DEGREES),
            }

    return datasets.Dataset.from_generator(rows, features=features)


@dataclass(frozen=True)
class EvalSample:
    """One evaluation case: an object, its target view, and `num_views` input view indices."""

    object_index: int
    category: str
    object_id: str
    target_index: int
    input_indices: tuple[int, ...]
    num_views: int


def make_eval_samples(
    objects, num_views=(1, 2, 3, 4, 5, 6), num_objects: int | None = None, seed: int = 0
) -> list[EvalSample]:
    """The evaluation set: per object one target view and, for each N, N input views from the other 23.

    Deterministic given the seed and the object list; the N-view inputs extend the (N-1)-view ones, so a table
    over N compares like with like.

    Example:
        ```py
        >>> samples = make_eval_samples(NMRDataset("data/pybullet-64", split="test"), num_views=(1, 3), num_objects=10)
        ```
    """
    num_views = tuple(int(n) for n in num_views)
    if not num_views or min(num_views) < 1 or max(num_views) > NUM_VIEWS - 1:
        raise ValueError(
            f"--num_views must lie in 1..{NUM_VIEWS - 1} (views other than the target), got {list(num_views)}."
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(objects))
    if num_objects is not None:
        order = order[:num_objects]
    samples = []
    for object_index in sorted(int(i) for i in order):
        object_rng = np.random.default_rng([seed, object_index])
        target = int(object_rng.integers(NUM_VIEWS))
        others = object_rng.permutation([k for k in range(NUM_VIEWS) if k != target])
        category, object_id = objects.objects[object_index]
        for n in num_views:
            samples.append(EvalSample(object_index, category, object_id, target, tuple(int(k) for k in others[:n]), n))
    return samples

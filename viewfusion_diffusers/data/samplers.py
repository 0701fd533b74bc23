"""Training batches as a pure function of (seed, step, process): the paper's sampling rules, the typed batch they
make, and the two ways to feed the training step.

The rules live in [`draw_views`]: a target view uniform over the 24, N uniform in `1..max_views`, N inputs without
replacement from the other 23 views, or from all 24 with probability `target_in_inputs_prob`. Both paths draw with
it and make a [`TrainingBatch`]:

- [`InMemoryViewSampler`]: every view of the split in one `(objects, 24, 3, H, W)` uint8 tensor (on the GPU
  when there is one: the pybullet set at 64x64 is about 300 MB), and a whole step's samples drawn at once, with
  a few vectorised indexing operations. No worker processes, no per-sample Python.
- [`ViewFusionTrainDataset`] through a `DataLoader` with [`EpochPermutationSampler`] and [`collate_views`], for
  datasets that do not fit in memory or are read from the Hub: one sample per item, read from disk.

Either way the step's noise, timesteps and pose-dropout draws come from [`draw_step_noise`], seeded by
[`step_seed`]: a resumed run redraws exactly what the uninterrupted run drew. [`training_micro_batches`] puts
the two together; the training script and the training benchmark both draw their batches from it.
"""

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from typing import ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from ..constants import AZIMUTH_STEP_DEGREES, NUM_VIEWS
from ..image_processor import ViewProcessor


def step_seed(seed: int, step: int, process_index: int = 0, stream: int = 0) -> int:
    """A 63-bit seed for one training step of one process (counter-based: no state to save or restore).

    `stream` separates independent draws of the same step (views, noise).

    Example:
        ```py
        >>> step_seed(0, 10) == step_seed(0, 10) != step_seed(0, 11)
        True
        ```
    """
    state = np.random.SeedSequence([int(seed), int(step), int(process_index), int(stream)]).generate_state(
        2, dtype=np.uint32
    )
    return (int(state[0]) << 31) ^ int(state[1])


def _check_max_views(max_views: int) -> None:
    if not 1 <= max_views <= NUM_VIEWS - 1:
        raise ValueError(f"max_views must be in 1..{NUM_VIEWS - 1}, got {max_views}.")


def draw_views(num_samples: int, max_views: int, target_in_inputs_prob: float, generator: torch.Generator):
    """The paper's rules for the views of `num_samples` training samples, drawn at once on the host.

    Each sample gets a target view uniform over the 24, a count N uniform in `1..max_views`, and N input views
    without replacement, in random order, from the other 23 views (with probability `target_in_inputs_prob`
    from all 24, so the target itself may be among them).

    Returns:
        `(target, num_views, inputs)`: the `(B,)` target view indices, the `(B,)` counts N, and the `(sum N,)`
        input view indices, sample after sample (all int64).

    Example:
        ```py
        >>> target, num_views, inputs = draw_views(4, 6, 0.1, torch.Generator().manual_seed(0))
        >>> target.shape, inputs.shape[0] == int(num_views.sum())
        (torch.Size([4]), True)
        ```
    """
    target = torch.randint(0, NUM_VIEWS, (num_samples,), generator=generator)
    num_views = torch.randint(1, max_views + 1, (num_samples,), generator=generator)
    target_allowed = torch.rand(num_samples, generator=generator) < target_in_inputs_prob
    # N views without replacement: the first N of a random ordering of the 24, the target sorted last
    # unless it is allowed among the inputs.
    keys = torch.rand(num_samples, NUM_VIEWS, generator=generator)
    samples = torch.arange(num_samples)
    keys[samples, target] = torch.where(target_allowed, keys[samples, target], 2.0)
    order = keys.argsort(dim=1)[:, :max_views]
    inputs = order[torch.arange(max_views)[None, :] < num_views[:, None]]
    return target, num_views, inputs


@dataclass(frozen=True, eq=False)
class TrainingBatch:
    """B training samples, each a target view and N input views of one object, and the draws of their step.

    Samples have different numbers of input views: the inputs are concatenated sample after sample, without
    padding, and `num_views` says how many belong to each. Images are float32 in [-1, 1], azimuths in degrees.
    The step's draws (`noise` to `noise_level_fraction`, from [`draw_step_noise`]) are None until
    [`training_micro_batches`] adds them with `dataclasses.replace(batch, **draws)`. The small per-sample tensors
    stay on the host, where reading them never waits for the device; the images live where they were made
    ([`to`] moves them).

    Attributes:
        input_views (`torch.Tensor`): `(sum N, 3, H, W)` float32, the input views.
        input_azimuths (`torch.Tensor`): `(sum N,)` float64 on the host, each input view's azimuth.
        num_views (`torch.Tensor`): `(B,)` int64 on the host, N of each sample (it shapes the U-Net batch).
        target (`torch.Tensor`): `(B, 3, H, W)` float32, the views to predict.
        target_azimuth (`torch.Tensor`): `(B,)` float32 on the host, their azimuths.
        object_indices (`torch.Tensor`, *optional*): `(B,)` int64 on the host, the objects' dataset indices.
        noise (`torch.Tensor`, *optional*): `(B, 3, H, W)` float32, the noise added to the targets.
        timesteps (`torch.Tensor`, *optional*): `(B,)` int64 on the host.
        posed (`torch.Tensor`, *optional*): `(B,)` bool on the host; False gives that sample's input views without
            their azimuths (pose dropout).
        noise_level_fraction (`torch.Tensor`, *optional*): `(B,)` float32 on the host, uniform in [0, 1): where a
            U-Net conditioned on the noise level draws its level between those of `timesteps - 1` and `timesteps`.

    Example:
        ```py
        >>> sampler = InMemoryViewSampler(torch.zeros(8, 24, 3, 4, 4, dtype=torch.uint8), batch_size=4)
        >>> batch = replace(sampler.batch(0), **draw_step_noise(4, (3, 4, 4), 1000, 0.5, seed=0))
        >>> batch.input_views.shape[0] == int(batch.num_views.sum()), batch.noise.shape
        (True, torch.Size([4, 3, 4, 4]))
        ```
    """

    PER_VIEW_FIELDS: ClassVar[tuple[str, ...]] = ("input_views", "input_azimuths")

    input_views: torch.Tensor
    input_azimuths: torch.Tensor
    num_views: torch.Tensor
    target: torch.Tensor
    target_azimuth: torch.Tensor
    object_indices: torch.Tensor | None = None
    noise: torch.Tensor | None = None
    timesteps: torch.Tensor | None = None
    posed: torch.Tensor | None = None
    noise_level_fraction: torch.Tensor | None = None

    @classmethod
    def from_uint8_views(
        cls,
        input_views: torch.Tensor,
        target: torch.Tensor,
        inputs: torch.Tensor,
        target_index: torch.Tensor,
        num_views: torch.Tensor,
        object_indices: torch.Tensor,
    ):
        """The batch of uint8 views and the view indices they show, as [`draw_views`] gives them (view `k` is at
        azimuth `view_azimuth(k)`).

        Example:
            ```py
            >>> views = torch.full((3, 3, 4, 4), 255, dtype=torch.uint8)  # a target and two inputs, white
            >>> batch = TrainingBatch.from_uint8_views(views[1:], views[:1], torch.tensor([2, 5]), torch.tensor([0]),
            ...                                        torch.tensor([2]), object_indices=torch.tensor([7]))
            >>> batch.input_azimuths.tolist(), batch.target.max().item()
            ([30.0, 75.0], 1.0)
            ```
        """
        return cls(
            input_views=input_views.float() / 127.5 - 1,
            input_azimuths=(inputs * AZIMUTH_STEP_DEGREES).double(),
            num_views=num_views,
            target=target.float() / 127.5 - 1,
            target_azimuth=(target_index * AZIMUTH_STEP_DEGREES).float(),
            object_indices=object_indices,
        )

    def to(self, device) -> "TrainingBatch":
        """The batch with its images (`input_views`, `target`, `noise`) on `device`, queued without waiting; the
        per-sample tensors stay on the host.

        Example:
            ```py
            >>> from viewfusion_diffusers.data.dataset import NMRDataset
            >>> train = ViewFusionTrainDataset(NMRDataset("data/pybullet-64"))
            >>> loader = torch.utils.data.DataLoader(train, batch_size=8, collate_fn=collate_views, pin_memory=True)
            >>> batch = next(iter(loader)).to("cuda")
            >>> batch.target.device.type, batch.num_views.device.type
            ('cuda', 'cpu')
            ```
        """
        noise = None if self.noise is None else self.noise.to(device, non_blocking=True)
        return replace(
            self,
            input_views=self.input_views.to(device, non_blocking=True),
            target=self.target.to(device, non_blocking=True),
            noise=noise,
        )

    def pin_memory(self) -> "TrainingBatch":
        """The batch with its host images in pinned memory: what a `DataLoader(..., pin_memory=True)` calls.

        Example:
            ```py
            >>> from viewfusion_diffusers.data.dataset import NMRDataset
            >>> train = ViewFusionTrainDataset(NMRDataset("data/pybullet-64"))
            >>> on_gpu = torch.cuda.is_available()  # pinned memory is for copies to a GPU; a CPU build has none
            >>> loader = torch.utils.data.DataLoader(train, batch_size=8, collate_fn=collate_views, pin_memory=on_gpu)
            >>> batch = next(iter(loader))  # the loader calls `batch.pin_memory()` when pinning
            >>> batch.input_views.is_pinned() == on_gpu
            True
            ```
        """
        noise = None if self.noise is None else self.noise.pin_memory()
        return replace(self, input_views=self.input_views.pin_memory(), target=self.target.pin_memory(), noise=noise)


def category_repeats(objects: list[tuple[str, str]], repeats: dict[str, int]) -> torch.Tensor:
    """How many times each object is visited an epoch: `repeats[category]` for its category's objects, else 1.

    A mixed dataset's sources are weighted so: the 811 pybullet training objects beside 3,120 procedural category
    objects are a fifth of every batch, and `{"random_urdfs": 4, "named": 4}` makes them about half.

    Args:
        objects (`list[tuple[str, str]]`): `(category, object id)` per object, as `NMRDataset.objects`.
        repeats (`dict[str, int]`): visits per epoch of each named category's objects (positive integers).

    Example:
        ```py
        >>> objects = [("random_urdfs", "000"), ("random_urdfs", "001"), ("car", "000")]
        >>> category_repeats(objects, {"random_urdfs": 3}).tolist()
        [3, 3, 1]
        ```
    """
    present = sorted({category for category, _ in objects})
    for category, count in repeats.items():
        if category not in present:
            raise ValueError(f"No training object is in category {category!r}; the categories are {present}.")
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"Repeats must be positive integers, got {count!r} for {category!r}.")
    return torch.tensor([repeats.get(category, 1) for category, _ in objects], dtype=torch.long)


def _epoch_items(num_objects: int, object_repeats: torch.Tensor | None) -> torch.Tensor:
    """The object of each item of an epoch: every object once, or `object_repeats[i]` times."""
    if object_repeats is None:
        return torch.arange(num_objects)
    if object_repeats.shape != (num_objects,) or bool((object_repeats < 1).any()):
        raise ValueError(
            f"`object_repeats` must hold one positive count per object ({num_objects}), got shape "
            f"{tuple(object_repeats.shape)}; make it with category_repeats."
        )
    return torch.arange(num_objects).repeat_interleave(object_repeats)


# ----------------------------------------------------------------------------------------------------------------
# Streamed: one sample per item, read from disk.


class ViewFusionTrainDataset(torch.utils.data.Dataset):
    """Training samples with the paper's rules ([`draw_views`]), drawn from any object source with `load_views`.

    Item `index` is a [`TrainingBatch`] of one sample of object `index`: only the views it shows are read. Its
    views are drawn from a generator seeded by `(seed, epoch, index)` alone: call `set_epoch` each epoch; any
    worker, in any order, and a resumed run draw the same sample. This is the streamed path for datasets that do
    not fit in memory; [`InMemoryViewSampler`] draws with the same rules from views held in one tensor.
    `object_repeats` (from [`category_repeats`]) makes object `i` the object of `object_repeats[i]` items.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.dataset import NMRDataset
        >>> train = ViewFusionTrainDataset(NMRDataset("data/pybullet-64"), max_views=6)
        >>> sample = train[0]  # object 0: a target view and N input views
        >>> sample.num_views, sample.input_views.shape, sample.target.shape
        (tensor([3]), torch.Size([3, 3, 64, 64]), torch.Size([1, 3, 64, 64]))
        >>> shuffle = EpochPermutationSampler(len(train), seed=0)  # call its `set_epoch` and the dataset's each epoch
        >>> loader = torch.utils.data.DataLoader(train, batch_size=8, sampler=shuffle, collate_fn=collate_views)
        >>> batch = next(iter(loader))
        >>> batch.object_indices.tolist(), batch.num_views.tolist(), batch.input_views.shape
        ([2, 10, 3, 12, 0, 4, 7, 5], [6, 4, 5, 1, 3, 1, 6, 6], torch.Size([32, 3, 64, 64]))
        ```
    """

    def __init__(
        self,
        objects,
        max_views: int = 6,
        target_in_inputs_prob: float = 0.1,
        seed: int = 0,
        object_repeats: torch.Tensor | None = None,
    ):
        _check_max_views(max_views)
        self.objects, self.max_views, self.target_in_inputs_prob = objects, max_views, target_in_inputs_prob
        self.seed, self.epoch = seed, 0
        self.item_objects = _epoch_items(len(objects), object_repeats)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.item_objects)

    def __getitem__(self, index: int) -> TrainingBatch:
        # Seeded by the item, not the object: an object's repeats in one epoch are different samples.
        seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, dtype=np.uint64)[0]
        generator = torch.Generator().manual_seed(int(seed))
        target, num_views, inputs = draw_views(1, self.max_views, self.target_in_inputs_prob, generator)
        object_index = int(self.item_objects[index])
        views = self.objects.load_views(object_index, [*target.tolist(), *inputs.tolist()])
        return TrainingBatch.from_uint8_views(
            views[1:], views[:1], inputs, target, num_views, torch.tensor([object_index])
        )


def collate_views(samples: list[TrainingBatch]) -> TrainingBatch:
    """Samples (or batches) with different numbers of views as one batch: every field concatenated, no padding.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.dataset import NMRDataset
        >>> train = ViewFusionTrainDataset(NMRDataset("data/pybullet-64"))
        >>> batch = collate_views([train[0], train[1], train[2]])
        >>> batch.target.shape, batch.num_views.tolist(), batch.input_views.shape  # 3 + 3 + 6 input views
        (torch.Size([3, 3, 64, 64]), [3, 3, 6], torch.Size([12, 3, 64, 64]))
        ```
    """

    def concatenated(name):
        values = [getattr(sample, name) for sample in samples]
        return None if values[0] is None else torch.cat(values)

    return TrainingBatch(**{field.name: concatenated(field.name) for field in fields(TrainingBatch)})


class EpochPermutationSampler(torch.utils.data.Sampler):
    """Shuffles a dataset with a permutation that depends only on (seed, epoch), so resuming restores it.

    Example:
        ```py
        >>> sampler = EpochPermutationSampler(8, seed=0)
        >>> sampler.set_epoch(3)
        >>> sorted(sampler) == list(range(8))
        True
        ```
    """

    def __init__(self, length: int, seed: int):
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.length).tolist())

    def __len__(self) -> int:
        return self.length


# ----------------------------------------------------------------------------------------------------------------
# In memory: every view of the split in one tensor, a whole step's samples at once.


def load_views_in_memory(
    objects, resolution: int | None = None, device=None, num_threads: int = 8, show_progress: bool = True
) -> torch.Tensor:
    """Every view of every object in one `(objects, 24, 3, H, W)` uint8 tensor, read once by a few threads.

    Args:
        objects: an [`NMRDataset`] or [`HFMultiViewDataset`] (anything with `len` and `load_views`).
        resolution (`int`, *optional*): resize views of another size to this, with [`ViewProcessor.resize`] (the
            one resize of the package, as for sampling).
        device (*optional*): where the tensor lives; the GPU keeps the whole data path off the host.
        num_threads (`int`, defaults to 8): PNG decoding releases the GIL, so threads read in parallel.

    Example:
        ```py
        >>> from viewfusion_diffusers.data.dataset import NMRDataset
        >>> views = load_views_in_memory(NMRDataset("data/pybullet-64"), device="cuda")
        >>> views.shape, views.dtype, views.device.type  # (objects of the train split, 24 views, C, H, W)
        (torch.Size([..., 24, 3, 64, 64]), torch.uint8, 'cuda')
        ```
    """
    if len(objects) == 0:
        raise ValueError("The dataset has no objects to load.")

    def load(index):
        views = objects.load_views(index)
        if resolution is not None and views.shape[-1] != resolution:
            views = ViewProcessor.resize(views.float() / 255, resolution, resolution)
            views = (views * 255).round().to(torch.uint8)
        return views

    first = load(0)
    stacked = torch.empty((len(objects), *first.shape), dtype=torch.uint8)
    stacked[0] = first
    with ThreadPoolExecutor(max(1, num_threads)) as pool:
        loaded = pool.map(load, range(1, len(objects)))
        for index, views in enumerate(
            tqdm(loaded, total=len(objects) - 1, desc="Loading views", disable=not show_progress), 1
        ):
            if views.shape != first.shape:
                raise ValueError(
                    f"Object {objects.objects[index]} has views of shape {tuple(views.shape)}, the first "
                    f"object {tuple(first.shape)}; pass `resolution` to resize them all to one size."
                )
            stacked[index] = views
    return stacked.to(device) if device is not None else stacked


class InMemoryViewSampler:
    """Training batches drawn from views held in one uint8 tensor, with the paper's rules, in a few tensor ops.

    Each epoch visits the objects (each `object_repeats[i]` times, when given) in a permutation of
    `(seed, epoch)`; step `s` of process `p` takes the `batch_size` objects at position
    `(s * num_processes + p) * batch_size` of it. The views of its samples are
    drawn by [`draw_views`] from a generator seeded by `(seed, step, p)`. A batch therefore depends only on
    `(seed, step, process)`: a resumed run draws the same batches, and splitting a step's batch into
    micro-batches (gradient accumulation) does not change it.

    Args:
        views (`torch.Tensor`): `(objects, 24, 3, H, W)` uint8, from [`load_views_in_memory`]; batches are made
            on its device.
        batch_size (`int`): samples per process per step.
        max_views (`int`, defaults to 6): N is uniform in `1..max_views`.
        target_in_inputs_prob (`float`, defaults to 0.1): probability that the inputs are drawn from all 24
            views (the target may then be among them) instead of the other 23.
        seed (`int`, defaults to 0), num_processes (`int`, defaults to 1), process_index (`int`, defaults to 0).
        object_repeats (`torch.Tensor`, *optional*): `(objects,)` visits of each object per epoch, from
            [`category_repeats`], to weight the sources of a mixed dataset (default: each object once).

    Example:
        ```py
        >>> from viewfusion_diffusers.data.dataset import NMRDataset
        >>> sampler = InMemoryViewSampler(load_views_in_memory(NMRDataset("data/pybullet-64")), batch_size=8)
        >>> sampler.steps_per_epoch  # 18 objects: two full batches of 8 an epoch
        2
        >>> batch = sampler.batch(step=0)
        >>> batch.object_indices.tolist(), batch.num_views.tolist(), batch.input_views.shape
        ([2, 10, 3, 12, 0, 4, 7, 5], [2, 4, 4, 2, 4, 1, 3, 4], torch.Size([24, 3, 64, 64]))
        ```
    """

    def __init__(
        self,
        views: torch.Tensor,
        batch_size: int,
        max_views: int = 6,
        target_in_inputs_prob: float = 0.1,
        seed: int = 0,
        num_processes: int = 1,
        process_index: int = 0,
        object_repeats: torch.Tensor | None = None,
    ):
        if views.ndim != 5 or views.shape[1] != NUM_VIEWS or views.dtype != torch.uint8:
            raise ValueError(
                f"`views` must be a (objects, {NUM_VIEWS}, 3, H, W) uint8 tensor, got "
                f"{tuple(views.shape)} {views.dtype}; make it with load_views_in_memory."
            )
        _check_max_views(max_views)
        self.item_objects = _epoch_items(views.shape[0], object_repeats)
        if batch_size * num_processes > len(self.item_objects):
            raise ValueError(
                f"{len(self.item_objects)} objects make no full batch of {batch_size} x {num_processes} processes; "
                "lower `batch_size` or give more objects."
            )
        self.views, self.batch_size, self.max_views = views, batch_size, max_views
        self.target_in_inputs_prob, self.seed = target_in_inputs_prob, seed
        self.num_processes, self.process_index = num_processes, process_index
        self.steps_per_epoch = len(self.item_objects) // (batch_size * num_processes)
        self._order_epoch, self._order = None, None

    def object_indices(self, step: int) -> torch.Tensor:
        """The `(batch_size,)` object indices of this process's batch at `step` (on the host).

        Example:
            ```py
            >>> sampler = InMemoryViewSampler(torch.zeros(8, 24, 3, 4, 4, dtype=torch.uint8), batch_size=4)
            >>> sorted(sampler.object_indices(0).tolist() + sampler.object_indices(1).tolist())  # one epoch
            [0, 1, 2, 3, 4, 5, 6, 7]
            ```
        """
        epoch, step_in_epoch = divmod(step, self.steps_per_epoch)
        if epoch != self._order_epoch:
            permutation = np.random.default_rng([self.seed, epoch]).permutation(len(self.item_objects))
            self._order = self.item_objects[torch.from_numpy(permutation)]
            self._order_epoch = epoch
        start = (step_in_epoch * self.num_processes + self.process_index) * self.batch_size
        return self._order[start : start + self.batch_size]

    def batch(self, step: int) -> TrainingBatch:
        """The [`TrainingBatch`] of `step`, its images on the views' device (without the step's noise).

        The draws are few small host tensors (the pair count must be known on the host to shape the U-Net
        batch, and drawing it on the GPU would wait for the GPU); the images are gathered on the device.

        Example:
            ```py
            >>> sampler = InMemoryViewSampler(torch.zeros(8, 24, 3, 4, 4, dtype=torch.uint8), batch_size=4)
            >>> batch = sampler.batch(step=0)
            >>> batch.target.shape, batch.input_views.shape[0] == int(batch.num_views.sum())
            (torch.Size([4, 3, 4, 4]), True)
            ```
        """
        generator = torch.Generator().manual_seed(step_seed(self.seed, step, self.process_index, stream=1))
        objects = self.object_indices(step)
        target, num_views, inputs = draw_views(self.batch_size, self.max_views, self.target_in_inputs_prob, generator)
        owner = torch.arange(self.batch_size).repeat_interleave(num_views)
        device = self.views.device
        input_views = self.views[objects[owner].to(device, non_blocking=True), inputs.to(device, non_blocking=True)]
        target_views = self.views[objects.to(device, non_blocking=True), target.to(device, non_blocking=True)]
        return TrainingBatch.from_uint8_views(input_views, target_views, inputs, target, num_views, objects)


# ----------------------------------------------------------------------------------------------------------------
# The step: its noise, its micro-batches.


def draw_step_noise(
    batch_size: int,
    image_shape,
    num_train_timesteps: int,
    pose_dropout: float,
    seed: int,
    device=None,
    min_timestep: int = 0,
) -> dict:
    """A step's noise `(B, *image_shape)`, timesteps `(B,)` in `min_timestep..num_train_timesteps - 1`, pose-kept
    flags `(B,)` and uniform `noise_level_fraction`s `(B,)` (where a continuous noise level falls between two
    timesteps' levels), from one seed: the draws of a [`TrainingBatch`], by field name.

    The noise is drawn by a generator on `device` (no host work or copy for the one large draw); the timesteps,
    flags and fractions on the host. Draw for the whole step and slice for micro-batches, so gradient accumulation
    sees the noise of the larger batch.

    Example:
        ```py
        >>> noise = draw_step_noise(8, (3, 64, 64), 1000, pose_dropout=0.5, seed=step_seed(0, 0))
        >>> noise["noise"].shape, noise["timesteps"].shape, noise["posed"].dtype
        (torch.Size([8, 3, 64, 64]), torch.Size([8]), torch.bool)
        >>> noise["timesteps"].tolist(), noise["posed"].tolist()  # the same for every run with this seed
        ([647, 856, 54, 730, 930, 510, 349, 304], [False, True, False, False, False, True, False, True])
        >>> sampler = InMemoryViewSampler(torch.zeros(8, 24, 3, 64, 64, dtype=torch.uint8), batch_size=8)
        >>> batch = replace(sampler.batch(0), **noise)  # a batch of 8 with its step's draws
        >>> batch.noise.shape == batch.target.shape
        True
        ```
    """
    device = torch.device(device or "cpu")
    host = torch.Generator().manual_seed(seed)
    timesteps = torch.randint(min_timestep, num_train_timesteps, (batch_size,), generator=host)
    posed = torch.rand(batch_size, generator=host) >= pose_dropout
    noise_level_fraction = torch.rand(batch_size, generator=host)
    noise_generator = torch.Generator(device).manual_seed(seed)
    noise = torch.randn((batch_size, *image_shape), generator=noise_generator, device=device)
    return {"noise": noise, "timesteps": timesteps, "posed": posed, "noise_level_fraction": noise_level_fraction}


def split_batch(batch: TrainingBatch, num_parts: int) -> list[TrainingBatch]:
    """Split a [`TrainingBatch`] into `num_parts` micro-batches of equal sample counts, in order.

    Example:
        ```py
        >>> sampler = InMemoryViewSampler(torch.zeros(8, 24, 3, 4, 4, dtype=torch.uint8), batch_size=4)
        >>> first, second = split_batch(sampler.batch(0), 2)
        >>> first.target.shape[0], first.input_views.shape[0] == int(first.num_views.sum())
        (2, True)
        ```
    """
    size = batch.num_views.shape[0]
    if size % num_parts:
        raise ValueError(f"A batch of {size} samples does not split into {num_parts} equal micro-batches.")
    part = size // num_parts
    view_offsets = [0, *torch.cumsum(batch.num_views, 0)[part - 1 :: part].tolist()]

    def piece(name, i):
        value = getattr(batch, name)
        if value is None:
            return None
        if name in TrainingBatch.PER_VIEW_FIELDS:
            return value[view_offsets[i] : view_offsets[i + 1]]
        return value[i * part : (i + 1) * part]

    return [TrainingBatch(**{field.name: piece(field.name, i) for field in fields(batch)}) for i in range(num_parts)]


def pair_bucket(num_pairs: int, batch_size: int, max_views: int) -> int:
    """The U-Net batch size for `num_pairs` pairs: rounded up to a multiple of `max(1, batch_size // 4)`, at
    most `batch_size * max_views`. About 3% padding at batch 64, and a handful of shapes instead of hundreds.

    Example:
        ```py
        >>> pair_bucket(217, batch_size=64, max_views=6)
        224
        ```
    """
    multiple = max(1, batch_size // 4)
    return min(-(-num_pairs // multiple) * multiple, batch_size * max_views)


def _set_loader_epoch(loader, epoch: int) -> None:
    # Accelerate's loaders pass their own epoch counter to the sampler when iterated: set it on the loader.
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(getattr(loader, "sampler", None), "set_epoch"):
        loader.sampler.set_epoch(epoch)


def training_micro_batches(
    first_step: int,
    step_batch: int,
    image_shape,
    num_train_timesteps: int,
    *,
    view_sampler: InMemoryViewSampler | None = None,
    dataloader=None,
    gradient_accumulation_steps: int = 1,
    pose_dropout: float = 0.5,
    seed: int = 0,
    process_index: int = 0,
    device=None,
    skip_first_batches=None,
    min_timestep: int = 0,
):
    """The micro-batches ([`TrainingBatch`]es with their draws) of every training step from `first_step` on, each
    step a pure function of `(seed, step, process_index)`.

    Views come from `view_sampler` (in memory) or from `dataloader` (a `DataLoader` of [`ViewFusionTrainDataset`]
    with [`EpochPermutationSampler`] and `collate_views`, batches of `step_batch // gradient_accumulation_steps`);
    the step's noise from [`draw_step_noise`] with `step_seed(seed, step, process_index, stream=2)`, drawn for
    the whole step and split, so gradient accumulation sees the noise of the larger batch.

    Args:
        first_step (`int`): the step to start at (a resumed run's step).
        step_batch (`int`): samples per process per optimizer step.
        image_shape: `(3, H, W)` of the noise.
        num_train_timesteps (`int`): timesteps are uniform in `min_timestep..num_train_timesteps - 1`.
        view_sampler ([`InMemoryViewSampler`], *optional*), dataloader (*optional*): exactly one of them.
        gradient_accumulation_steps (`int`, defaults to 1): micro-batches per step.
        pose_dropout (`float`, defaults to 0.5): probability that a sample's views come without azimuths.
        seed (`int`), process_index (`int`): the run's seed and this process's index.
        device (*optional*): where the noise is drawn and the streamed views are moved.
        skip_first_batches (*optional*): `(loader, n) -> loader` that skips `n` batches cheaply (accelerate's
            `Accelerator.skip_first_batches`); by default the skipped batches are read and dropped.
        min_timestep (`int`, defaults to 0): 1 for a U-Net conditioned on the noise level, whose level at `t` is
            drawn between those of `t - 1` and `t`.

    Example:
        ```py
        >>> sampler = InMemoryViewSampler(torch.zeros(8, 24, 3, 4, 4, dtype=torch.uint8), batch_size=4)
        >>> batches = training_micro_batches(
        ...     0, 4, (3, 4, 4), 1000, view_sampler=sampler, gradient_accumulation_steps=2
        ... )
        >>> next(batches).noise.shape
        torch.Size([2, 3, 4, 4])
        ```
    """
    if (view_sampler is None) == (dataloader is None):
        raise ValueError("Give exactly one of `view_sampler` and `dataloader`.")
    if step_batch % gradient_accumulation_steps:
        raise ValueError(
            f"A step of {step_batch} samples does not split into {gradient_accumulation_steps} equal micro-batches."
        )

    def step_noise(step):
        noise_seed = step_seed(seed, step, process_index, stream=2)
        return draw_step_noise(
            step_batch, image_shape, num_train_timesteps, pose_dropout, noise_seed, device, min_timestep
        )

    step = first_step
    if view_sampler is not None:
        while True:
            yield from split_batch(replace(view_sampler.batch(step), **step_noise(step)), gradient_accumulation_steps)
            step += 1
    steps_per_epoch = len(dataloader) // gradient_accumulation_steps
    if steps_per_epoch == 0:
        raise ValueError(
            f"The dataloader's {len(dataloader)} batches make no step of {gradient_accumulation_steps} "
            "micro-batches; lower `gradient_accumulation_steps` or the batch size."
        )
    while True:
        epoch, step_in_epoch = divmod(step, steps_per_epoch)
        if hasattr(dataloader.dataset, "set_epoch"):
            dataloader.dataset.set_epoch(epoch)
        _set_loader_epoch(dataloader, epoch)
        skipped = step_in_epoch * gradient_accumulation_steps
        if skip_first_batches is not None and skipped:
            loader = skip_first_batches(dataloader, skipped)
            _set_loader_epoch(loader, epoch)
            loaded = iter(loader)
        else:
            loaded = itertools.islice(iter(dataloader), skipped, None)
        while step < (epoch + 1) * steps_per_epoch:
            # Each micro-batch takes its share of the step's draws, in order, as `split_batch` would give it.
            draws = {name: value.chunk(gradient_accumulation_steps) for name, value in step_noise(step).items()}
            for part in range(gradient_accumulation_steps):
                batch = next(loaded)
                if device is not None:
                    batch = batch.to(device)
                yield replace(batch, **{name: chunks[part] for name, chunks in draws.items()})
            step += 1

"""Training batches held in memory: the paper's rules, pure functions of (seed, step, process), padding-free
results."""

from dataclasses import fields, replace

import pytest
import torch
from conftest import make_tiny_unet
from diffusers.training_utils import EMAModel

from viewfusion_diffusers import ViewFusionUNet2DModel
from viewfusion_diffusers.constants import AZIMUTH_STEP_DEGREES
from viewfusion_diffusers.data import NMRDataset, ViewFusionTrainDataset, collate_views
from viewfusion_diffusers.data.samplers import (
    EpochPermutationSampler,
    InMemoryViewSampler,
    draw_step_noise,
    load_views_in_memory,
    pair_bucket,
    split_batch,
    step_seed,
    training_micro_batches,
)
from viewfusion_diffusers.fusion import predict_fused_noise
from viewfusion_diffusers.training_utils import load_ema_state


@pytest.fixture(scope="module")
def views_in_memory(rendered_dataset):
    return load_views_in_memory(NMRDataset(rendered_dataset, split="train"), show_progress=False)


def test_views_in_memory_are_the_dataset_views(rendered_dataset, views_in_memory):
    dataset = NMRDataset(rendered_dataset, split="train")
    assert views_in_memory.shape == (8, 24, 3, 32, 32) and views_in_memory.dtype == torch.uint8
    for index in (0, 7):
        torch.testing.assert_close(views_in_memory[index], dataset.load_views(index), rtol=0, atol=0)
    half = load_views_in_memory(dataset, resolution=16, num_threads=2, show_progress=False)
    assert half.shape == (8, 24, 3, 16, 16)


def test_batches_follow_the_paper_rules(views_in_memory):
    sampler = InMemoryViewSampler(views_in_memory, batch_size=4, max_views=6, seed=0)
    counts, samples, target_among_inputs = set(), 0, 0
    for step in range(60):
        batch = sampler.batch(step)
        num_views = batch.num_views.tolist()
        counts.update(num_views)
        assert batch.input_views.shape == (sum(num_views), 3, 32, 32)
        assert -1 <= batch.input_views.min() and batch.input_views.max() <= 1
        azimuths = batch.input_azimuths.split(num_views)
        for i, (object_index, n) in enumerate(zip(batch.object_indices.tolist(), num_views)):
            view_indices = (azimuths[i] / AZIMUTH_STEP_DEGREES).long()
            assert len(set(view_indices.tolist())) == n, "inputs are drawn without replacement"
            first = sum(num_views[:i])
            expected = views_in_memory[object_index, view_indices].float() / 127.5 - 1
            torch.testing.assert_close(batch.input_views[first : first + n], expected, rtol=0, atol=0)
            target_index = int(batch.target_azimuth[i] / AZIMUTH_STEP_DEGREES)
            torch.testing.assert_close(
                batch.target[i], views_in_memory[object_index, target_index].float() / 127.5 - 1
            )
            target_among_inputs += target_index in view_indices.tolist()
            samples += 1
    assert counts == set(range(1, 7))
    assert 0 < target_among_inputs < 0.1 * samples  # allowed with probability 0.1, and then only sometimes drawn


def test_batches_are_a_function_of_seed_step_and_process(views_in_memory):
    sampler = InMemoryViewSampler(views_in_memory, batch_size=2, seed=3, num_processes=2, process_index=0)
    other_process = InMemoryViewSampler(views_in_memory, batch_size=2, seed=3, num_processes=2, process_index=1)
    assert sampler.steps_per_epoch == 2
    again = InMemoryViewSampler(views_in_memory, batch_size=2, seed=3, num_processes=2, process_index=0)
    batch, resumed = sampler.batch(5), again.batch(5)  # e.g. a resumed run
    for field in fields(batch):
        torch.testing.assert_close(getattr(resumed, field.name), getattr(batch, field.name), rtol=0, atol=0)
    # One epoch (2 steps x 2 processes x 2 samples) visits every object once.
    epoch = [i for step in (0, 1) for s in (sampler, other_process) for i in s.batch(step).object_indices.tolist()]
    assert sorted(epoch) == list(range(8))
    assert sampler.batch(2).object_indices.tolist() != sampler.batch(0).object_indices.tolist()


def test_split_batch_gives_the_micro_batches_of_a_step(views_in_memory):
    batch = replace(
        InMemoryViewSampler(views_in_memory, batch_size=4).batch(0), **draw_step_noise(4, (3, 32, 32), 1000, 0.5, 7)
    )
    first, second = split_batch(batch, 2)
    for field in fields(batch):
        halves = [getattr(first, field.name), getattr(second, field.name)]
        torch.testing.assert_close(torch.cat(halves), getattr(batch, field.name), rtol=0, atol=0)
    assert first.input_views.shape[0] == int(first.num_views.sum())
    with pytest.raises(ValueError, match="does not split into 3"):
        split_batch(batch, 3)


def test_both_paths_make_the_same_typed_batch(rendered_dataset, views_in_memory):
    """The streamed and the in-memory batches agree field by field: dtype, rank, and where each tensor lives."""
    streamed = collate_views(
        [ViewFusionTrainDataset(NMRDataset(rendered_dataset, split="train"))[i] for i in range(4)]
    )
    in_memory = InMemoryViewSampler(views_in_memory, batch_size=4).batch(0)
    for field in fields(streamed):
        a, b = getattr(streamed, field.name), getattr(in_memory, field.name)
        if a is None or b is None:
            assert a is None and b is None, field.name
            continue
        assert (a.dtype, a.ndim, a.device) == (b.dtype, b.ndim, b.device), field.name
    assert streamed.input_azimuths.dtype == torch.float64 and streamed.num_views.dtype == torch.int64

    moved = replace(in_memory, **draw_step_noise(4, (3, 32, 32), 1000, 0.5, 0)).to("meta")
    assert {moved.input_views.device.type, moved.target.device.type, moved.noise.device.type} == {"meta"}
    assert {moved.num_views.device.type, moved.timesteps.device.type, moved.input_azimuths.device.type} == {"cpu"}


def test_streamed_micro_batches_share_the_draws_of_their_step(rendered_dataset, views_in_memory):
    """With gradient accumulation each streamed micro-batch gets its slice of the step's draws, as in memory."""
    dataset = ViewFusionTrainDataset(NMRDataset(rendered_dataset, split="train"), max_views=3, seed=1)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=2,
        sampler=EpochPermutationSampler(len(dataset), 1),
        collate_fn=collate_views,
        drop_last=True,
    )
    common = dict(gradient_accumulation_steps=2, pose_dropout=0.5, seed=1, process_index=0)
    streamed = training_micro_batches(0, 4, (3, 32, 32), 1000, dataloader=loader, **common)
    in_memory = training_micro_batches(
        0, 4, (3, 32, 32), 1000, view_sampler=InMemoryViewSampler(views_in_memory, 4), **common
    )
    for step in range(3):  # 8 objects in micro-batches of 2: steps 0 and 1 fill epoch 0, step 2 starts epoch 1
        whole = draw_step_noise(4, (3, 32, 32), 1000, 0.5, step_seed(1, step, 0, stream=2))
        parts = [next(streamed) for _ in range(2)]
        memory_parts = [next(in_memory) for _ in range(2)]
        for name, value in whole.items():
            torch.testing.assert_close(torch.cat([getattr(part, name) for part in parts]), value, rtol=0, atol=0)
            torch.testing.assert_close(
                torch.cat([getattr(part, name) for part in memory_parts]), value, rtol=0, atol=0
            )
        assert all(part.input_views.shape[0] == int(part.num_views.sum()) for part in parts)


def test_step_noise_is_reproducible_and_seeds_differ():
    assert len({step_seed(0, s, p, k) for s in range(3) for p in range(2) for k in range(2)}) == 12
    a, b = (
        draw_step_noise(3, (3, 8, 8), 1000, 0.5, step_seed(0, 1)),
        draw_step_noise(3, (3, 8, 8), 1000, 0.5, step_seed(0, 1)),
    )
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert not torch.equal(a["noise"], draw_step_noise(3, (3, 8, 8), 1000, 0.5, step_seed(0, 2))["noise"])
    assert draw_step_noise(64, (3, 2, 2), 1000, 1.0, 0)["posed"].sum() == 0


def test_pair_buckets_are_few_and_never_too_small():
    buckets = {pair_bucket(n, 64, 6) for n in range(64, 64 * 6 + 1)}
    assert buckets == set(range(64, 385, 16))  # 21 shapes over every possible count; a run sees about 6
    assert all(pair_bucket(n, 64, 6) >= n for n in range(64, 385)) and pair_bucket(384, 64, 6) == 384
    assert pair_bucket(5, 2, 3) == 5


def test_epoch_permutation_depends_on_seed_and_epoch_only():
    sampler = EpochPermutationSampler(10, seed=1)
    first = list(sampler)
    assert sorted(first) == list(range(10)) and list(EpochPermutationSampler(10, seed=1)) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


@pytest.mark.parametrize("relative_pose", [False, True])
def test_padding_pairs_does_not_change_the_fused_prediction(relative_pose):
    unet = make_tiny_unet(relative_pose=relative_pose)
    generator = torch.Generator().manual_seed(0)
    num_views = torch.tensor([1, 3, 2])
    views = torch.randn(6, 3, 16, 16, generator=generator)
    noisy = torch.randn(3, 3, 16, 16, generator=generator)
    view_azimuth = torch.tensor([0.0, 15.0, float("nan"), 90.0, 30.0, 45.0]).double() if relative_pose else None
    args = (unet, views, noisy, torch.tensor([10, 500, 999]), torch.tensor([30.0, 60.0, 90.0]), num_views)
    with torch.no_grad():
        fused, weights = predict_fused_noise(*args, view_azimuth=view_azimuth)
        padded, padded_weights = predict_fused_noise(*args, view_azimuth=view_azimuth, pad_pairs_to=9)
    torch.testing.assert_close(padded, fused, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(padded_weights, weights, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="below the 6 pairs"):
        predict_fused_noise(*args, pad_pairs_to=4)


def test_load_ema_state_puts_the_weights_on_the_model_device(tmp_path):
    """A resumed run's EMA must live where the model does, or its first `step` fails across devices.

    `EMAModel.from_pretrained` reads onto the CPU; a model on the "meta" device stands in for a GPU.
    """
    unet = make_tiny_unet()
    saved = EMAModel(unet.parameters(), model_cls=ViewFusionUNet2DModel, model_config=unet.config)
    saved.optimization_step = 7
    saved.save_pretrained(str(tmp_path / "unet_ema"))

    device = torch.device("meta")
    model = make_tiny_unet(seed=1).to(device)
    ema = EMAModel(model.parameters(), model_cls=ViewFusionUNet2DModel, model_config=model.config, foreach=True)
    load_ema_state(ema, str(tmp_path / "unet_ema"), ViewFusionUNet2DModel, device)
    reference = next(model.parameters())
    assert {(p.device, p.dtype) for p in ema.shadow_params} == {(reference.device, reference.dtype)}
    assert ema.optimization_step == 7
    ema.step(model.parameters())  # on the wrong device this raises "Expected all tensors to be on the same device"

    with pytest.raises(ValueError, match="holds no EMA weights"):
        load_ema_state(ema, str(tmp_path / "missing"), ViewFusionUNet2DModel, device)

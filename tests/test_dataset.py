import shutil

import PIL.Image
import pytest
import torch

from viewfusion_diffusers.data import (
    HFMultiViewDataset,
    NMRDataset,
    ViewFusionTrainDataset,
    collate_views,
    make_eval_samples,
    to_hf_dataset,
)


@pytest.fixture
def nmr_tree(tmp_path):
    """A hand-made tree in the real NMR layout: a synset folder, softras_ lists, RGBA views."""
    root = tmp_path / "NMR_Dataset"
    for object_id in ("obj_a", "obj_b"):
        image_dir = root / "02691156" / object_id / "image"
        image_dir.mkdir(parents=True)
        for k in range(24):
            PIL.Image.new("RGBA", (16, 16), (k * 10, 0, 0, 255 if k % 2 else 0)).save(image_dir / f"{k:04d}.png")
    (root / "02691156" / "softras_train.lst").write_text("obj_a\nobj_b\n")
    (root / "02691156" / "softras_test.lst").write_text("obj_b\n")
    (root / "metadata.yaml").write_text("02691156:\n  id: '02691156'\n  name: airplane\n")
    return root


def test_reads_the_rendered_layout(rendered_dataset):
    dataset = NMRDataset(rendered_dataset, split="train")
    assert len(dataset) == 8 and dataset.objects[0][0] == "random_urdfs"
    views = dataset.load_views(0)
    assert views.shape == (24, 3, 32, 32) and views.dtype == torch.uint8
    torch.testing.assert_close(dataset.load_views(0, [5, 2]), views[[5, 2]])


def test_reads_nmr_softras_lists_and_composites_on_white(nmr_tree):
    dataset = NMRDataset(nmr_tree, split="train", list_prefix="softras_")
    assert dataset.objects == [("02691156", "obj_a"), ("02691156", "obj_b")]
    assert dataset.category_names == {"02691156": "airplane"}
    views = dataset.load_views(1)
    assert (views[0] == 255).all()  # transparent view 0 -> white
    assert views[1, 0, 0, 0] == 10 and views[1, 1, 0, 0] == 0
    assert len(NMRDataset(nmr_tree, split="test", list_prefix="softras_")) == 1


def test_training_samples_follow_the_paper_rules(rendered_dataset):
    train = ViewFusionTrainDataset(NMRDataset(rendered_dataset), max_views=6, target_in_inputs_prob=0.1, seed=0)
    counts, target_among_inputs = set(), 0
    for epoch in range(25):
        train.set_epoch(epoch)
        for index in range(len(train)):
            sample = train[index]
            n = int(sample.num_views)
            counts.add(n)
            assert sample.input_views.shape == (n, 3, 32, 32) and len(set(sample.input_azimuths.tolist())) == n
            assert -1 <= sample.input_views.min() and sample.input_views.max() <= 1
            target_among_inputs += float(sample.target_azimuth) in sample.input_azimuths.tolist()
    assert counts == set(range(1, 7))
    assert 0 < target_among_inputs < 0.1 * 200  # allowed with probability 0.1, and then only sometimes drawn
    train.set_epoch(3)
    first, again = train[2], train[2]
    torch.testing.assert_close(first.input_views, again.input_views)
    train.set_epoch(4)
    assert not (
        train[2].target_azimuth == first.target_azimuth and torch.equal(train[2].input_azimuths, first.input_azimuths)
    )


def test_collate_packs_mixed_view_counts(rendered_dataset):
    train = ViewFusionTrainDataset(NMRDataset(rendered_dataset), max_views=6)
    batch = collate_views([train[i] for i in range(4)])
    assert batch.input_views.shape == (int(batch.num_views.sum()), 3, 32, 32)
    assert batch.target.shape == (4, 3, 32, 32) and batch.target_azimuth.dtype == torch.float32
    assert batch.object_indices.tolist() == [0, 1, 2, 3]


def test_category_repeats_weight_both_training_paths(rendered_dataset):
    """A category repeated K times is K times as frequent in every epoch, in memory and streamed alike."""
    from viewfusion_diffusers.data.samplers import (
        EpochPermutationSampler,
        InMemoryViewSampler,
        category_repeats,
        load_views_in_memory,
    )

    dataset = NMRDataset(rendered_dataset)  # 8 random_urdfs training objects
    # two of them labelled as a second source, as the pybullet objects beside the categories
    labelled = [("pybullet" if i < 2 else "category", object_id) for i, (_, object_id) in enumerate(dataset.objects)]
    repeats = category_repeats(labelled, {"pybullet": 3})
    assert repeats.tolist() == [3, 3, 1, 1, 1, 1, 1, 1]

    sampler = InMemoryViewSampler(load_views_in_memory(dataset, show_progress=False), 2, object_repeats=repeats)
    assert sampler.steps_per_epoch == 6
    for epoch in range(2):
        steps = range(epoch * 6, (epoch + 1) * 6)
        visits = torch.cat([sampler.object_indices(step) for step in steps]).bincount(minlength=8)
        assert visits.tolist() == repeats.tolist()

    streamed = ViewFusionTrainDataset(dataset, seed=0, object_repeats=repeats)
    assert len(streamed) == 12
    items = list(EpochPermutationSampler(len(streamed), seed=0))
    objects = torch.cat([streamed[item].object_indices for item in items])
    assert objects.bincount(minlength=8).tolist() == repeats.tolist()
    # an object's repeats are different samples, not one sample three times
    first_three = [streamed[item] for item in range(3)]
    assert {int(sample.object_indices) for sample in first_three} == {0}
    assert len({(float(s.target_azimuth), tuple(s.input_azimuths.tolist())) for s in first_three}) > 1

    with pytest.raises(ValueError, match=r"category 'pybulet'; the categories are \['category', 'pybullet'\]"):
        category_repeats(labelled, {"pybulet": 3})
    with pytest.raises(ValueError, match="positive integers"):
        category_repeats(labelled, {"pybullet": 0})
    with pytest.raises(ValueError, match="one positive count per object"):
        InMemoryViewSampler(sampler.views, 2, object_repeats=repeats[:4])


def test_eval_samples_are_deterministic_and_nested(rendered_dataset):
    dataset = NMRDataset(rendered_dataset)
    samples = make_eval_samples(dataset, num_views=(1, 2, 3, 6), num_objects=5, seed=0)
    assert samples == make_eval_samples(dataset, num_views=(1, 2, 3, 6), num_objects=5, seed=0)
    assert samples != make_eval_samples(dataset, num_views=(1, 2, 3, 6), num_objects=5, seed=1)
    assert len(samples) == 20
    for group in (samples[i : i + 4] for i in range(0, 20, 4)):
        assert len({s.target_index for s in group}) == 1
        assert all(s.target_index not in s.input_indices for s in group)
        assert group[3].input_indices[:3] == group[2].input_indices
    with pytest.raises(ValueError, match="1..23"):
        make_eval_samples(dataset, num_views=(24,))


def test_hf_datasets_round_trip(rendered_dataset, tmp_path):
    import datasets

    dataset = NMRDataset(rendered_dataset, split="val")
    hf = to_hf_dataset(dataset)
    hf.save_to_disk(str(tmp_path / "hf"))
    reloaded = HFMultiViewDataset(datasets.load_from_disk(str(tmp_path / "hf")))
    assert reloaded.objects == dataset.objects
    torch.testing.assert_close(reloaded.load_views(0), dataset.load_views(0))
    sample = ViewFusionTrainDataset(reloaded, seed=0)[0]
    torch.testing.assert_close(sample.target, ViewFusionTrainDataset(dataset, seed=0)[0].target)


def test_hf_views_composite_transparency_on_white_and_need_one_square_size():
    import datasets

    transparent = PIL.Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    features = datasets.Features(
        {
            "category": datasets.Value("string"),
            "object_id": datasets.Value("string"),
            "views": datasets.Sequence(datasets.Image()),
        }
    )
    rows = {
        "category": ["c", "c"],
        "object_id": ["square", "mixed"],
        "views": [[transparent] * 24, [transparent] * 23 + [PIL.Image.new("RGBA", (4, 2))]],
    }
    objects = HFMultiViewDataset(datasets.Dataset.from_dict(rows, features=features))
    views = objects.load_views(0, view_indices=[3])
    assert views.shape == (1, 3, 4, 4) and bool((views == 255).all())
    with pytest.raises(ValueError, match="same square size"):
        objects.load_views(1)


@pytest.fixture
def broken_copy(rendered_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(rendered_dataset, root)
    return root, NMRDataset(root, split="train").objects[0][1]


def test_missing_png_names_the_object(broken_copy):
    root, object_id = broken_copy
    (root / "random_urdfs" / object_id / "image" / "0005.png").unlink()
    with pytest.raises(ValueError, match=f"{object_id}.* has 23 views"):
        NMRDataset(root).load_views(0)


def test_corrupt_png_names_the_file(broken_copy):
    root, object_id = broken_copy
    (root / "random_urdfs" / object_id / "image" / "0005.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="0005.png"):
        NMRDataset(root).load_views(0)


def test_wrong_image_size_names_the_object(broken_copy):
    root, object_id = broken_copy
    PIL.Image.new("RGB", (16, 16)).save(root / "random_urdfs" / object_id / "image" / "0007.png")
    with pytest.raises(ValueError, match=f"{object_id}.*same square size"):
        NMRDataset(root).load_views(0)


def test_empty_split_missing_split_and_unknown_category(broken_copy):
    root, _ = broken_copy
    with pytest.raises(ValueError, match="no_such_category"):
        NMRDataset(root, categories=["no_such_category"])
    with pytest.raises(ValueError, match="holdout.lst"):
        NMRDataset(root, split="holdout")
    (root / "random_urdfs" / "val.lst").write_text("\n")
    with pytest.raises(ValueError, match="val.lst is empty"):
        NMRDataset(root, split="val")
    with pytest.raises(ValueError, match="does not exist"):
        NMRDataset(root / "nowhere")

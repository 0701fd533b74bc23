import pytest
import torch

from viewfusion_diffusers import fuse_noise, pad_views


def random_views(num_views, seed=0):
    generator = torch.Generator().manual_seed(seed)
    total = sum(num_views)
    return torch.randn(total, 3, 5, 5, generator=generator), torch.randn(total, 3, 5, 5, generator=generator)


def test_permuting_views_does_not_change_fused_noise():
    noise, logits = random_views([4])
    permutation = torch.tensor([2, 0, 3, 1])
    fused, _ = fuse_noise(noise, logits, torch.tensor([4]))
    fused_permuted, _ = fuse_noise(noise[permutation], logits[permutation], torch.tensor([4]))
    torch.testing.assert_close(fused, fused_permuted)


def test_padded_views_get_exactly_zero_weight_and_weights_sum_to_one():
    num_views = torch.tensor([1, 3, 6])
    noise, logits = random_views(num_views.tolist())
    fused, weights = fuse_noise(noise, logits, num_views)
    assert fused.shape == (3, 3, 5, 5) and weights.shape == (3, 6, 3, 5, 5)
    assert (weights[0, 1:] == 0).all() and (weights[1, 3:] == 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3, 3, 5, 5))


def test_padding_does_not_change_a_sample():
    noise, logits = random_views([1, 3, 6])
    fused, _ = fuse_noise(noise, logits, torch.tensor([1, 3, 6]))
    alone, _ = fuse_noise(noise[1:4], logits[1:4], torch.tensor([3]))
    torch.testing.assert_close(fused[1], alone[0])
    # Equal counts take the reshape path, mixed counts the padded one: both give the same fusion.
    noise, logits = random_views([3, 3, 6])
    uniform, uniform_weights = fuse_noise(noise[:6], logits[:6], torch.tensor([3, 3]))
    mixed, mixed_weights = fuse_noise(noise, logits, torch.tensor([3, 3, 6]))
    torch.testing.assert_close(uniform, mixed[:2])
    torch.testing.assert_close(uniform_weights, mixed_weights[:2, :3])


def test_one_view_reduces_to_its_own_noise():
    noise, logits = random_views([1, 1])
    fused, weights = fuse_noise(noise, logits, torch.tensor([1, 1]))
    torch.testing.assert_close(fused, noise)
    assert (weights == 1).all()


def test_weighting_off_is_the_mean_of_the_views():
    noise, logits = random_views([2, 4])
    fused, weights = fuse_noise(noise, logits, torch.tensor([2, 4]), weighting=False)
    torch.testing.assert_close(fused[0], noise[:2].mean(0))
    torch.testing.assert_close(fused[1], noise[2:].mean(0))
    assert (weights[0, 2:] == 0).all()


def test_weights_follow_the_logits():
    noise, _ = random_views([2])
    logits = torch.zeros(2, 3, 5, 5)
    logits[0] = 20.0
    fused, _ = fuse_noise(noise, logits, torch.tensor([2]))
    torch.testing.assert_close(fused[0], noise[0], atol=1e-6, rtol=0)


def test_pad_views_checks_counts():
    flat = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="sums to 3"):
        pad_views(flat, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="at least one view"):
        pad_views(flat, torch.tensor([4, 0]))

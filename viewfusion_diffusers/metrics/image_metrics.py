"""PSNR and SSIM of images in [0, 1], as the novel view synthesis literature computes them."""

import torch
import torch.nn.functional as F


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB with data range 1, per image; identical images give `inf`.

    Args:
        prediction, target (`torch.Tensor`): `(B, C, H, W)` in [0, 1].

    Example:
        ```py
        >>> psnr(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1))
        tensor([20.])
        ```
    """
    mse = (prediction.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return (-10 * torch.log10(mse)).float()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    return kernel[:, None] * kernel[None, :]


def ssim(prediction: torch.Tensor, target: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per image: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range 1.

    Computed per channel over the valid region (no padding) and averaged over channels and pixels, which is
    scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)` and the way pixelNeRF reports SSIM.

    Example:
        ```py
        >>> ssim(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape
        torch.Size([2])
        ```
    """
    channels = prediction.shape[1]
    window = gaussian_window(window_size, sigma).to(prediction.device)
    window = window.expand(channels, 1, window_size, window_size).contiguous()
    x, y = prediction.double(), target.double()
    blur = lambda image: F.conv2d(image, window, groups=channels)
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1).float()

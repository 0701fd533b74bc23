"""Image metrics of the novel view synthesis literature: PSNR, SSIM and LPIPS (VGG)."""

from .image_metrics import psnr, ssim
from .lpips import LPIPS, LPIPSWeightsError, convert_lpips_weights, ensure_lpips_weights


__all__ = ["LPIPS", "LPIPSWeightsError", "convert_lpips_weights", "ensure_lpips_weights", "psnr", "ssim"]

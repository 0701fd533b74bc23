"""This folder's pipeline class, for `DiffusionPipeline.from_pretrained(folder_or_repo_id,
custom_pipeline=folder_or_repo_id, trust_remote_code=True)`: the pipeline of the installed viewfusion-diffusers
package (`pip install viewfusion-diffusers`), which `ViewFusionPipeline.from_pretrained` loads without this file."""

from viewfusion_diffusers import ViewFusionPipeline

__all__ = ["ViewFusionPipeline"]

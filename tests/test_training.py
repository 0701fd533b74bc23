"""The training script in real `accelerate launch` subprocesses, on a few rendered objects and a tiny U-Net."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from viewfusion_diffusers import ViewFusionPipeline, ViewFusionUNet2DModel
from conftest import TINY_UNET_32

SCRIPT = str(Path(__file__).resolve().parent.parent / "training" / "train_viewfusion.py")


ACCELERATE_CPU_CONFIG = str(Path(SCRIPT).parent / "accelerate_cpu_2proc.yaml")


def launch(num_processes, data_dir, output_dir, config_file, *extra):
    """`accelerate launch` with the shipped CPU config: real processes joined by gloo when num_processes > 1."""
    placement = ["--config_file", ACCELERATE_CPU_CONFIG, "--num_processes", "2", "--main_process_port", "29531"]
    if num_processes == 1:
        placement = ["--cpu", "--num_processes", "1", "--num_machines", "1", "--dynamo_backend", "no"]
    return [
        sys.executable, "-m", "accelerate.commands.launch", *placement, "--mixed_precision", "no",
        SCRIPT, "--data_dir", str(data_dir), "--output_dir", str(output_dir), "--model_config", str(config_file),
        "--resolution", "32", "--train_batch_size", "2", "--lr_warmup_steps", "0", "--learning_rate", "1e-3",
        "--validation_inference_steps", "2", "--num_validation_objects", "1", "--max_views", "3", *extra,
    ]


def run(command, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, **kwargs)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def unet_weights(folder):
    return load_file(os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"))


def test_two_cpu_processes_train_and_write_a_loadable_pipeline(rendered_dataset, tiny_unet_config_file, tmp_path):
    output = tmp_path / "run"
    result = run(launch(2, rendered_dataset, output, tiny_unet_config_file,
                        "--max_train_steps", "3", "--checkpointing_steps", "2", "--validation_steps", "3"))
    assert "2 processes" in result.stderr
    pipe = ViewFusionPipeline.from_pretrained(output)
    assert pipe.unet.config.sample_size == 32
    assert (output / "README.md").read_text().startswith("---")
    assert (output / "checkpoint-2" / "pipeline" / "model_index.json").exists()
    assert (output / "validation" / "step-0000003.png").exists()
    assert list((output / "logs").rglob("events.out.tfevents.*"))
    assert not list(output.glob(".tmp-*")) and not list(output.glob(".saving-*"))


def test_resume_after_sigkill_matches_an_uninterrupted_run(rendered_dataset, tiny_unet_config_file, tmp_path):
    common = ("--use_ema", "--checkpointing_steps", "2", "--validation_steps", "0", "--report_to", "none",
              "--lr_scheduler", "constant_with_warmup", "--relative_pose", "--pose_dropout", "0.5")
    straight = tmp_path / "straight"
    run(launch(1, rendered_dataset, straight, tiny_unet_config_file, "--max_train_steps", "6", *common))

    # The same run, killed as soon as its first checkpoint is complete, then resumed to the same step.
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(launch(1, rendered_dataset, killed, tiny_unet_config_file, "--max_train_steps", "100000", *common),
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (killed / "checkpoint-2").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (killed / "checkpoint-2").exists()
    result = run(launch(1, rendered_dataset, killed, tiny_unet_config_file, "--max_train_steps", "6",
                        "--resume_from_checkpoint", "latest", *common))
    assert "Resumed from" in result.stderr

    straight_weights, resumed_weights = unet_weights(straight), unet_weights(killed)
    assert straight_weights.keys() == resumed_weights.keys()
    assert any(k.startswith("class_embedding.relative_azimuth.") for k in straight_weights)
    assert straight_weights["class_embedding.unknown_pose"].abs().max() > 0, "pose dropout never gave an unposed sample"
    for name in straight_weights:
        torch.testing.assert_close(resumed_weights[name], straight_weights[name], rtol=0, atol=0, msg=name)


def test_bf16_mixed_precision_runs_on_cpu(rendered_dataset, tiny_unet_config_file, tmp_path):
    output = tmp_path / "bf16"
    command = launch(1, rendered_dataset, output, tiny_unet_config_file, "--max_train_steps", "2",
                     "--checkpointing_steps", "100", "--validation_steps", "0", "--report_to", "none")
    command[command.index("--mixed_precision") + 1] = "bf16"
    run(command)
    assert ViewFusionPipeline.from_pretrained(output).unet.dtype == torch.float32


def test_gradient_accumulation_equals_a_larger_batch(rendered_dataset, tiny_unet_config_file, tmp_path):
    common = ("--max_train_steps", "1", "--checkpointing_steps", "100", "--validation_steps", "0", "--report_to", "none")
    big = launch(1, rendered_dataset, tmp_path / "big", tiny_unet_config_file, *common)
    big[big.index("--train_batch_size") + 1] = "4"
    run(big)
    result = run(launch(1, rendered_dataset, tmp_path / "accumulated", tiny_unet_config_file,
                        "--gradient_accumulation_steps", "2", *common))
    assert "4 samples per step" in result.stderr
    big_weights, accumulated = unet_weights(tmp_path / "big"), unet_weights(tmp_path / "accumulated")
    torch.manual_seed(0)  # the script's initialisation
    initial = ViewFusionUNet2DModel(**TINY_UNET_32).state_dict()
    assert any(not torch.equal(initial[name], big_weights[name]) for name in big_weights), "the step changed nothing"
    # One AdamW step moves each weight by about the learning rate (1e-3); float rounding of the split sum,
    # amplified by Adam's normalisation, stays orders of magnitude below that.
    for name in big_weights:
        torch.testing.assert_close(accumulated[name], big_weights[name], rtol=0, atol=2e-5, msg=name)
    # Without accumulation the step sees only the first two samples and lands measurably elsewhere.
    run(launch(1, rendered_dataset, tmp_path / "small", tiny_unet_config_file, *common))
    small = unet_weights(tmp_path / "small")
    assert max((small[name] - big_weights[name]).abs().max().item() for name in big_weights) > 1e-4


def test_fine_tuning_starts_from_the_pretrained_weights(rendered_dataset, tiny_pipeline_32_dir, tmp_path):
    """The first logged loss is the loaded pipeline's loss on the first batch, not a random model's."""
    sys.path.insert(0, str(Path(SCRIPT).parent))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from train_viewfusion import EpochPermutationSampler

    from viewfusion_diffusers.data import NMRDataset, ViewFusionTrainDataset, collate_views
    from viewfusion_diffusers.training_utils import fused_loss, sample_generators

    command = launch(1, rendered_dataset, tmp_path / "tuned", "unused", "--pretrained_model_name_or_path",
                     str(tiny_pipeline_32_dir), "--max_train_steps", "2", "--checkpointing_steps", "100",
                     "--validation_steps", "0", "--seed", "3")
    run(command)
    events = EventAccumulator(str(next((tmp_path / "tuned" / "logs").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    first_loss = events.Scalars("loss")[0].value

    # The same first batch, drawn with the script's own sampler and seeds.
    dataset = ViewFusionTrainDataset(NMRDataset(rendered_dataset, split="train"), max_views=3, seed=3)
    dataset.set_epoch(0)
    indices = list(EpochPermutationSampler(len(dataset), seed=3))[:2]
    batch = collate_views([dataset[i] for i in indices])
    pretrained = ViewFusionPipeline.from_pretrained(tiny_pipeline_32_dir)

    def loss_of(unet):
        with torch.no_grad():
            generators = sample_generators(3, 0, batch["indices"])
            return fused_loss(unet.train(), pretrained.scheduler, batch, generators, 32).item()

    torch.manual_seed(3)
    random_loss = loss_of(ViewFusionUNet2DModel(**TINY_UNET_32))
    assert abs(first_loss - loss_of(pretrained.unet)) < 1e-4 * max(1.0, first_loss)
    assert abs(first_loss - random_loss) > 1e-2 * first_loss
    tuned = ViewFusionPipeline.from_pretrained(tmp_path / "tuned")
    assert tuned.scheduler.config.prediction_type == pretrained.scheduler.config.prediction_type
    changed = any(not torch.equal(a, b) for a, b in zip(tuned.unet.state_dict().values(), pretrained.unet.state_dict().values()))
    assert changed, "two fine-tuning steps changed nothing"

    # A pipeline that predicts epsilon cannot silently be fine-tuned as if it predicted v.
    result = subprocess.run(command + ["--prediction_type", "v_prediction"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode != 0 and "drop --prediction_type" in result.stderr

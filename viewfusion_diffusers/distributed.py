"""How the training and evaluation scripts join the processes of an `accelerate launch`."""

import os

from .dependencies import import_optional


def cpu_distributed() -> bool:
    """True when launched as several processes on a machine without a GPU (e.g. with
    `training/accelerate_cpu_2proc.yaml`): accelerate must then be told `cpu=True` to join them with gloo.

    Example:
        ```py
        >>> from accelerate import PartialState
        >>> state = PartialState(cpu=cpu_distributed())
        ```
    """
    import torch

    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def gather(items: list, state) -> list:
    """Every process's list, concatenated, on every process (the list itself with one process).

    Example:
        ```py
        >>> from accelerate import PartialState
        >>> state = PartialState(cpu=cpu_distributed())
        >>> records = [{"process": state.process_index, "lpips": 0.25}]  # what this process scored
        >>> gather(records, state)  # under `accelerate launch`, every process's records, in process order
        [{'process': 0, 'lpips': 0.25}]
        ```
    """
    if state.num_processes == 1:
        return items
    return import_optional("accelerate.utils", "eval").gather_object(items)

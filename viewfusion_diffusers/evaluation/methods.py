"""The methods an evaluation scores, all on the same samples and sampling noise."""

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalMethod:
    """One way of running the pipeline on the evaluation samples.

    Args:
        name (`str`): the method's name in the tables and records.
        weighting (`bool`): the learned fusion weights (`True`) or equal weights (the paper's ablation).
        posed (`bool`): give the pipeline the input views' true azimuths (`input_azimuths`).

    Example:
        ```py
        >>> EvalMethod("equal_weights_posed", weighting=False, posed=True)
        EvalMethod(name='equal_weights_posed', weighting=False, posed=True)
        ```
    """

    name: str
    weighting: bool = True
    posed: bool = False


# Table order. `viewfusion` is the paper's method; `_posed` the same pipeline told the input views' azimuths.
METHODS = (
    "viewfusion",
    "viewfusion_posed",
    "equal_weights",
    "equal_weights_posed",
    "nearest_view",
    "mean_view",
)
BASELINES = ("nearest_view", "mean_view")


def pipeline_methods(posed: bool = False) -> tuple[EvalMethod, ...]:
    """The pipeline methods of an evaluation: the learned weights and the equal-weights ablation, each also in posed
    mode when `posed`.

    Example:
        ```py
        >>> [m.name for m in pipeline_methods(posed=True)]
        ['viewfusion', 'viewfusion_posed', 'equal_weights', 'equal_weights_posed']
        ```
    """
    methods = []
    for method in (EvalMethod("viewfusion"), EvalMethod("equal_weights", weighting=False)):
        methods.append(method)
        if posed:
            methods.append(EvalMethod(f"{method.name}_posed", method.weighting, posed=True))
    return tuple(methods)


def method_order(name: str) -> int:
    """Where a method's rows go in the tables: the order of `METHODS`, unknown names last.

    Example:
        ```py
        >>> sorted(["mean_view", "viewfusion", "other"], key=method_order)
        ['viewfusion', 'mean_view', 'other']
        ```
    """
    return METHODS.index(name) if name in METHODS else len(METHODS)


SAMPLER_STUDY_STEPS = (10, 20, 50, 100, 250)


@dataclass
class SamplerStudySettings:
    """Which samplers the study runs, at which step counts, on how many of the evaluation samples.

    Example:
        ```py
        >>> SamplerStudySettings(schedulers=("ddim", "unipc"), steps=(10, 20), num_samples=16)
        SamplerStudySettings(schedulers=('ddim', 'unipc'), steps=(10, 20), num_samples=16)
        ```
    """

    schedulers: tuple[str, ...] = ("ddpm", "ddim")
    steps: tuple[int, ...] = SAMPLER_STUDY_STEPS
    num_samples: int = 8

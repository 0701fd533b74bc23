"""The samplers a pipeline takes by name, and the paper's training schedule.

The names map to diffusers' classes by class name, so that a command line can list them without importing diffusers
(and torch); the classes are looked up when a scheduler is built.
"""

# Each name: the diffusers scheduler class, and the settings that make it that sampler over any config.
SCHEDULERS = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "dpmsolver": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpmsolver-sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "unipc": ("UniPCMultistepScheduler", {}),
}
SCHEDULER_NAMES = tuple(SCHEDULERS)


def scheduler_from_name(name: str, config):
    """Build a scheduler by short name (a key of `SCHEDULERS`) from another scheduler's config.

    `ddpm` with fewer steps than the training schedule is ancestral sampling on a strided schedule (DDIM with
    eta = 1); `dpmsolver-sde` is DPM-Solver++'s stochastic variant. Both draw fresh noise at every step.

    Example:
        ```py
        >>> scheduler_from_name("dpmsolver", default_scheduler().config).config.algorithm_type
        'dpmsolver++'
        ```
    """
    import diffusers

    if name not in SCHEDULERS:
        raise ValueError(f"Unknown scheduler {name!r}; choose one of {', '.join(SCHEDULER_NAMES)}.")
    class_name, settings = SCHEDULERS[name]
    return getattr(diffusers, class_name).from_config(config, **settings)


def default_scheduler(prediction_type: str = "epsilon"):
    """The paper's noise schedule as a `DDPMScheduler`: linear betas 1e-6 .. 1e-2 over 2,000 steps, x0 clipped to
    [-1, 1].

    Example:
        ```py
        >>> default_scheduler().config.num_train_timesteps
        2000
        ```
    """
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=2000,
        beta_start=1e-6,
        beta_end=1e-2,
        beta_schedule="linear",
        prediction_type=prediction_type,
        clip_sample=True,
    )

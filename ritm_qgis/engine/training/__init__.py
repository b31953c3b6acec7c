"""Training and fine-tuning RITM networks (iterative click sampling, NFL loss, DDP).

    from ritm_qgis.engine.training import TrainConfig, train
    from ritm_qgis.engine.data.specs import MaskFolderSpec
    path = train(TrainConfig(train_data=[MaskFolderSpec("../shared/data/davis", "davis")], out="out/run",
                             arch="hrnet_tiny"),
                 progress=lambda f, msg: print(f, msg), cancel=lambda: False)

Modules: ``sampler`` (initial and iterative clicks), ``losses`` (normalized focal loss, BCE),
``augment`` (resize/flip/pad/crop/colour), ``data`` (datasets -> training items),
``loop`` (the trainer), ``distributed`` (torchrun/DDP). Importing this package imports torch
lazily: only ``loop``'s functions and ``data.ClickDataset`` items need it.
"""

from .loop import TrainConfig, train  # noqa: F401

__all__ = ["TrainConfig", "train"]

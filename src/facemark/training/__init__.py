"""Training (the only layer that imports torch): configs checked at load, the model zoo and its backbones,
losses, tasks that own each output's targets and loss, data and augmentation, the generic trainer, STC,
and export to what ships."""

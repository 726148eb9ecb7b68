"""hand_recon_core.training: the training and evaluation engine shared by all five methods.

Modules:
    config      YAML experiment configs validated into dataclasses; dotted ``key=value`` overrides.
    schedules   optimisers (adam, adamw, sgd) and lr schedules (plateau with floor, cosine + warm-up, step).
    data        per-sample seeding, the method's target encoding, resumable sharded data order.
    engine      :class:`~.engine.Trainer`: AMP, clipping, validation, logging, checkpoints, exact resume, DDP.
    checkpoint  checkpoint layout, atomic writes, ``weights_only`` loading, method / shape / hand-model checks.
    distributed ``torchrun`` set-up (gloo on CPU, nccl on CUDA), metric reduction.
    logs        CSV, TensorBoard and the curves PNG (rank 0).
    evaluator   matching predicted to ground-truth hands, per-hand rows, dataset metrics with conventions.
    evaluation  evaluate a checkpoint on a dataset (``hand-recon eval``).
    visualize   input | mesh overlay | side-view pictures through :mod:`hand_recon_core.render`.

Methods plug in through :mod:`hand_recon_core.models.registry`; datasets through
:func:`hand_recon_core.data.build.build_dataset`.

Why plain PyTorch + ``torch.distributed`` (DDP launched by ``torchrun``) and not PyTorch Lightning (or another
trainer framework):

* **Dependencies in the ROS environment.** The same package is installed next to ROS 2 (colcon, system or PyPI
  wheels) where every extra dependency has to be resolvable without pulling a second torch; Lightning brings
  its own pins (torchmetrics, fsspec, lightning-utilities ...) for a loop that is ~400 lines here. Inference
  never needs the trainer, and nothing in :mod:`hand_recon_core` imports one.
* **Exact, inspectable resume.** A resumed run must continue bit for bit on CPU: same weights, optimiser and
  schedule state, same data order from the middle of an epoch, same per-sample augmentation, same RNG streams
  per rank. That needs control over the sampler, the loader's generator, per-sample seeding, when RNG states
  are captured and what a checkpoint holds (plain tensors and values, loadable with ``weights_only=True``);
  with a framework these live in callbacks and loop internals that change between releases. Here they are
  in :mod:`.data`, :mod:`.checkpoint` and :mod:`.engine`, and a test compares a killed-and-resumed run with an
  uninterrupted one.
* **Small surface.** What the methods need (AMP, clipping, three schedules, DDP, CSV/TensorBoard logs) is a
  short loop; ``torchrun`` already handles process spawning, rendezvous and environment set-up.
"""

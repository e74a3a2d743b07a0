"""vptlab: when does visual prompt tuning beat full fine-tuning, and why?

The Python API, imported on first use (``import vptlab`` stays fast and does not import torch)::

    import vptlab
    model = vptlab.create_backbone("vptlab-tiny", num_classes=10)
    result = vptlab.train_run(vptlab.RunConfig(method="vpt-deep", task="count", epochs=10), "run-dir")
    study = vptlab.run_study(vptlab.load_spec("studies/demo.toml"), "demo-out")
    vptlab.build_report("demo-out")
    tuned = vptlab.load_tuned("run-dir")        # the tuned model, its preprocessing and class names
"""

from vptlab._lazy import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    # backbones and prompts
    "create_backbone": "vptlab.backbones",
    "load_checkpoint": "vptlab.backbones",
    "attach_prompts": "vptlab.backbones",
    # methods
    "get_method": "vptlab.methods",
    "list_methods": "vptlab.methods",
    # data
    "load_task": "vptlab.data",
    "list_tasks": "vptlab.data",
    "export_synthetic": "vptlab.data.synthetic",
    # one run
    "RunConfig": "vptlab.train",
    "train_run": "vptlab.train",
    "build_model": "vptlab.train",
    # from a run to use
    "load_tuned": "vptlab.deploy",
    "export_run": "vptlab.deploy",
    # studies
    "load_spec": "vptlab.study",
    "run_study": "vptlab.study",
    # analysis and report
    "advise": "vptlab.analysis.advisor",
    "compute_fid": "vptlab.analysis.fid",
    "build_report": "vptlab.report",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

__getattr__ = lazy_getattr("vptlab", _EXPORTS)

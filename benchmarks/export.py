"""`medzoo export` and `medzoo push`: a model the harness kept becomes a Hugging Face Hub-style folder
(`model.safetensors`, timm-style `config.json`, a `README.md` model card written from its result), which
`zoo.create_model("hf-hub:ORG/NAME", pretrained=True)` — and plain timm, for timm-native architectures — loads back.

The card is generated from the result JSON (dataset, license, citation, suite@version, protocol, test metrics with
95% CIs, seed, training time), so it says only what the harness measured.
"""

from __future__ import annotations

import math
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import timm
from huggingface_hub import EvalResult, ModelCardData

import zoo
from benchmarks import paths
from benchmarks.data import DATASETS
from benchmarks.results.schema import Result, TrainingRecord, load
from zoo import MedzooError, hub_unreachable, offline, trained_meta, verify_sha256

CARD_LICENSES = {"CC BY 4.0": "cc-by-4.0", "CC BY-NC 4.0": "cc-by-nc-4.0"}


def _result_for(checkpoint: Path, meta: dict[str, Any], results_dir: Path) -> Result | None:
    """The stored result of the cell that kept `checkpoint` (its key is in the file's metadata), if any."""
    key = meta.get("cell")
    if not key:
        return None
    for path in sorted(results_dir.glob(f"*/{key}.json")):
        result = load(path)
        if result.model is not None and result.model.checkpoint is not None and \
                Path(result.model.checkpoint.path) == checkpoint:
            return result
    return None


def resolve(source: Path | str, results_dir: Path | str | None = None) -> tuple[Path, Result | None]:
    """A result JSON or a kept model file → (the model file, sha256-verified when a result names it; its result)."""
    path = Path(source)
    if not path.is_file():
        raise MedzooError(f"{path} not found: give a result JSON (<results store>/<suite>/<cell>.json) of a "
                          f"finetune/scratch cell run with --save-checkpoints, or the .safetensors file it names")
    if path.suffix != ".json":
        return path, _result_for(path.resolve(), trained_meta(path), Path(results_dir or paths.results_dir()))
    result = load(path)
    ckpt = result.model.checkpoint if result.model is not None else None
    if result.status != "ok" or ckpt is None:
        raise MedzooError(f"{path}: cell {result.key} kept no model ({result.status}). Re-run it into its store with "
                          f"`medzoo run --suite {result.suite.split('@')[0]} --results-dir {path.parent.parent} "
                          f"--force --save-checkpoints` (finetune/scratch cells)")
    model_path = Path(ckpt.path)
    if not model_path.is_file():
        raise MedzooError(f"{path}: the model it kept, {model_path}, is not on this machine (kept models live outside "
                          f"git, in the store's checkpoint folder). Re-run the cell with --save-checkpoints here")
    verify_sha256(model_path, ckpt.sha256)
    return model_path, result


def _fmt_metrics(result: Result) -> list[str]:
    rows = ["| metric | test | 95% CI |", "|---|---:|---|"]
    for name, value in sorted(result.test.items()):
        if isinstance(value, float) and name not in ("n_pixels", "prevalence"):
            ci = result.metrics.ci.get(name) if result.metrics else None
            rows.append(f"| {name} | {value:.4f} | {f'[{ci[0]:.4f}, {ci[1]:.4f}]' if ci else '–'} |")
    return rows


# model-index metric types: Hugging Face's metric ids where one exists, else medzoo's name
_METRIC_TYPES = {"auc": "roc_auc", "acc": "accuracy", "f1": "f1", "dice": "dice", "precision": "precision",
                 "recall": "recall", "sensitivity": "recall", "specificity": "specificity"}


def card_license(meta: dict[str, Any]) -> str:
    """The license of a kept model's card and config.json: its training data's (a model trained on CC BY data is
    shared under CC BY), `other` where the data's license has no Hub id."""
    ds = DATASETS.get(meta["trained_on"]) if meta.get("trained_on") in DATASETS else None
    return CARD_LICENSES.get(ds.license, "other") if ds else "other"


def _eval_results(result: Result, task: str, dataset: str) -> list[EvalResult]:
    """The test metrics for the model-index, each followed by its bootstrap 95% CI bounds when the result has one."""
    out: list[EvalResult] = []
    ci = result.metrics.ci if result.metrics else {}
    for name, value in sorted(result.test.items()):
        if not isinstance(value, float) or name in ("n_pixels", "prevalence") or math.isnan(value):
            continue
        kind = _METRIC_TYPES.get(name, name)
        common = {"task_type": task, "dataset_type": dataset, "dataset_name": dataset, "dataset_split": "test"}
        out.append(EvalResult(**common, metric_type=kind, metric_value=round(value, 6), metric_name=f"test {name}"))
        if name in ci:
            for bound, v in zip(("low", "high"), ci[name], strict=True):
                out.append(EvalResult(**common, metric_type=f"{kind}_ci95_{bound}", metric_value=round(v, 6),
                                      metric_name=f"test {name}, 95% CI {bound} (stratified bootstrap, 1000)"))
    return out


def _front_matter(meta: dict[str, Any], result: Result | None, timm_native: bool) -> str:
    """YAML front matter through huggingface_hub's ModelCardData, so `ModelCard.load` reads back what we mean:
    license (as config.json), datasets (medzoo's dataset names), base_model (the Hub weights it started from, if
    any) and a model-index of the test metrics with their CIs."""
    arch, trained_on = meta["arch"], meta.get("trained_on")
    ds = DATASETS.get(trained_on) if trained_on in DATASETS else None
    task = "image-segmentation" if meta.get("task") == "segmentation" else "image-classification"
    source = result.model.source if result is not None and result.model is not None else None
    base = source.removeprefix("hf-hub:").split("@")[0] if source and source.startswith("hf-hub:") else None
    data = ModelCardData(
        license=card_license(meta), library_name="timm" if timm_native else "medzoo", pipeline_tag=task,
        tags=["medical-imaging", "medzoo", arch] + ([ds.name] if ds else []),
        datasets=[ds.name] if ds else None, base_model=base,
        model_name=f"{arch} trained on {trained_on or 'unknown data'} (medzoo)",
        eval_results=_eval_results(result, task, ds.name) if result is not None and ds is not None else None)
    return f"---\n{data.to_yaml()}\n---\n"


def model_card(meta: dict[str, Any], result: Result | None, repo: str | None = None, folder: str = ".") -> str:
    """A Hub model card (YAML front matter + markdown) from the kept model's metadata and its result; the loading
    example names the Hub `repo` when given, else the local `folder`."""
    ds = DATASETS.get(meta["trained_on"]) if meta.get("trained_on") in DATASETS else None
    arch, timm_native = meta["arch"], meta["arch"] in timm.list_models(meta["arch"])
    front = [_front_matter(meta, result, timm_native)]
    lines = [f"# {arch} trained on {meta.get('trained_on', 'unknown data')} (medzoo)", "",
             "> **Research and benchmarking only — not a medical device.** This model is not validated for "
             "diagnosis, treatment or any clinical decision, and must not be used for them.", "",
             "## Model", "",
             f"- architecture: `{arch}` ({zoo.get_spec(arch).paper}), {meta['in_chans']} input channel(s), "
             f"{meta['num_classes']} output(s)",
             f"- labels: {', '.join(f'{i} = {n}' for i, n in enumerate(meta['label_names']))}"
             if meta.get("label_names") else "- output: one logit per pixel (sigmoid = positive-class probability)",
             f"- input: {meta.get('input_size', meta.get('patch_size'))} px, normalised as (x/255 − mean) / std with "
             f"mean {meta['mean']}, std {meta['std']}"
             + (f"; stored {meta['data_size']} px images, policy `{meta['policy']}`" if meta.get("policy") else ""),
             f"- kept by `medzoo run` from cell `{meta.get('cell', '?')}`", ""]
    if ds:
        lines += ["## Training data", "", f"- {ds.name}: {ds.description}", f"- license: {ds.license}",
                  f"- cite: {ds.citation}", ""]
    if result is not None:
        cell, p, prov = result.cell, result.cell.protocol, result.provenance
        tr = result.training or TrainingRecord()
        lines += ["## How it was trained", "",
                  f"- suite `{result.suite}`, mode `{cell.mode}`, seed {cell.seed}"
                  + (f", initialised from cell `{cell.init_from}`" if cell.init_from else ""),
                  f"- protocol: {p.optimizer} lr {p.lr:g}, weight decay {p.weight_decay:g}, {p.schedule} "
                  f"schedule, up to {p.epochs} epochs, batch {p.batch_size}, best epoch by {p.monitor}"
                  + (f", early stopping patience {p.patience}" if p.patience else "")
                  + (", flips/rotations" if p.augment else ""),
                  f"- trained {tr.epochs_run or '?'} epochs (best epoch {tr.best_epoch or '?'}; stop: "
                  f"{tr.stop_reason or '?'}) in {(prov.duration_s or 0) / 60:.1f} min on "
                  f"{prov.device} ({prov.cpu}), torch {prov.packages.get('torch', '?')}, medzoo git "
                  f"{(prov.git.sha or '?')[:10]}" + (" with uncommitted code changes" if prov.git.dirty else ""),
                  f"- data splits (images): "
                  f"{', '.join(f'{k} {v}' for k, v in (result.data.n if result.data else {}).items())}; the test "
                  f"split was never used for training or model selection", "",
                  "## Test results", "", *_fmt_metrics(result), "",
                  "CIs: stratified bootstrap of the test set (1000 resamples)."
                  if result.metrics and result.metrics.ci else "", ""]
    else:
        lines += ["## Test results", "", "No medzoo result was found for this file, so this card reports none: "
                  "export from the result JSON to include them.", ""]
    source = f"hf-hub:{repo}" if repo else folder
    load = [f'model = zoo.create_model("{source}", pretrained=True).eval()' if repo
            else f'model = zoo.load_pretrained("{source}")',
            '# labels: model.pretrained_cfg["label_names"]']
    if timm_native:
        load += ["", "import timm", f'model = timm.create_model("{source if repo else "local-dir:" + source}", '
                                    f'pretrained=True)']
    lines += ["## How to use", "", "```python", "import zoo  # pip install medzoo", *load, "```", "",
              "## Citation", "",
              f"Cite the dataset above, the architecture's paper, and medzoo (version {_version()}): The medzoo "
              f"developers, *medzoo: an open benchmark and model zoo for medical image classification and "
              f"segmentation* (see CITATION.cff in the medzoo repository).", ""]
    return "\n".join(front + lines)


def _version() -> str:
    try:
        return metadata.version("medzoo")
    except metadata.PackageNotFoundError:
        return "unknown"


def export(source: Path | str, out_dir: Path | str, repo: str | None = None,
           results_dir: Path | str | None = None) -> Path:
    """Write the Hub-style folder of a kept model (a result JSON or the model file itself); returns the folder."""
    path, result = resolve(source, results_dir)
    net, meta = zoo.load_trained(path)
    size = int(meta.get("input_size") or meta.get("patch_size") or zoo.get_spec(meta["arch"]).default_size)
    net.pretrained_cfg.update(input_size=(int(meta["in_chans"]), size, size), mean=tuple(meta["mean"]),
                              std=tuple(meta["std"]), interpolation=meta.get("interpolation") or "bicubic",
                              crop_pct=1.0, license=card_license(meta))  # config.json says what the card says
    facts = {k: meta[k] for k in ("task", "trained_on", "cell", "data_size", "policy", "requested_size", "resize",
                                  "precision", "threshold", "patch_size", "overlap") if k in meta}
    if result is not None:
        facts |= {"suite": result.suite, "metrics": result.test,
                  "ci": {k: list(v) for k, v in result.metrics.ci.items()} if result.metrics else {}}
    return zoo.save_pretrained(net, out_dir, label_names=meta.get("label_names"),
                               card=model_card(meta, result, repo, Path(out_dir).name), medzoo=facts)


def push(folder: Path | str, repo: str, token: str | None = None, private: bool = False,
         endpoint: str | None = None) -> str:
    """Upload an exported folder to the Hub repo `repo` (created if missing); returns the commit URL. Offline, or
    with the Hub unreachable, it fails at once with what to do."""
    folder = Path(folder)
    missing = [f for f in ("model.safetensors", "config.json", "README.md") if not (folder / f).is_file()]
    if missing:
        raise MedzooError(f"{folder} is not an exported model folder (missing {', '.join(missing)}): run "
                          f"`medzoo export RESULT --out {folder}` first")
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    if offline():
        raise MedzooError("offline mode (HF_HUB_OFFLINE/MEDZOO_OFFLINE is set): push needs the network. Unset it "
                          f"on a machine with internet, or copy {folder} there and push from it")
    why = hub_unreachable(endpoint)
    if why:
        raise MedzooError(f"cannot reach the Hub ({why}): push from a machine with internet access (the folder "
                          f"{folder} is complete and can be copied there)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model",
                                 commit_message="Upload model exported by medzoo")
    except HfHubHTTPError as e:
        raise MedzooError(f"the Hub refused the upload to {repo}: {str(e).splitlines()[0]} (log in with `hf auth "
                          f"login` or pass --token, and check that you may write to {repo})") from None
    return str(info.commit_url)

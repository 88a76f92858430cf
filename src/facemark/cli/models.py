"""``facemark models``: every shipped model (landmark models and detectors) with the config that trained it."""
from __future__ import annotations

import argparse
import json

from ..inference.runtime import WEIGHTS_DIR
from .base import command


def shipped_models() -> list[dict]:
    """Name, kind, its config (``configs/NAME.yaml`` in the repository: one per shipped model), the full training command,
    the ONNX files' sha256 and the validation metrics of every model card under the package's weights."""
    rows = []
    for card_path in sorted(WEIGHTS_DIR.glob("*.json")) + sorted((WEIGHTS_DIR / "detectors").glob("*.json")):
        card = json.loads(card_path.read_text())
        sha = card["sha256"]
        rows.append({"name": card["name"], "kind": card.get("kind", "landmarks"),
                     "config": f"configs/{card['name']}.yaml",
                     "command": card.get("training_command"),
                     "sha256": sha if isinstance(sha, dict) else {"fp32": sha, **(
                         {"int8": card["int8"]["sha256"]} if "int8" in card else {})},
                     "validation": card.get("validation")})
    return rows


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per model")


@command("models", _args)
def _models(a: argparse.Namespace) -> int:
    """List the shipped models and the config each was trained from (the metafile)."""
    rows = shipped_models()
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    for r in rows:
        val = r["validation"] or {}
        metric = (f"NME {val['nme'] * 100:.2f}% ({val.get('norm', 'iod')})" if "nme" in val
                  else f"recall {val['recall']:.3f}" if "recall" in val else "")
        print(f"{r['name']:14} {r['kind']:9} {r['config'] or '-':34} {metric}")
    return 0

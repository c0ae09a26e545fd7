"""Every glued value of the executed notebooks, as one JSON document: to compare two builds.

    python tools/glue_values.py [FOLDER ...] > glue.json      (default: book/generated)

For each notebook (``*.ipynb`` under the folders, by path relative to its folder) and each glue
key (myst-nb's ``scrapbook`` output metadata), the output's mime bundle with the prefix of
myst-nb's mime types removed: ``text/plain`` and ``text/markdown`` exactly as stored, images as the
SHA-256 of their base64 text (a figure drawn differently changes its hash; compare them apart from
the numbers if the plotting stack changed).  Keys sorted, so two builds with the same values give
byte-identical files: ``cmp before.json after.json``.  A key glued twice in one notebook keeps
every value, in order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

IMAGE_PREFIX = "image/"


def _text(v: object) -> str:
    return "".join(v) if isinstance(v, list) else str(v)


def glue_values(nb: dict) -> dict[str, list[dict[str, str]]]:
    """Glue key -> the values glued under it (mime type -> text or image hash), in cell order."""
    out: dict[str, list[dict[str, str]]] = {}
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []) or []:
            meta = (o.get("metadata") or {}).get("scrapbook")
            if not meta or "name" not in meta:
                continue
            cut = len(meta.get("mime_prefix", ""))
            bundle = {}
            for mime, v in sorted((o.get("data") or {}).items()):
                mime = mime[cut:]
                t = _text(v)
                bundle[mime] = ("sha256:" + hashlib.sha256(t.encode()).hexdigest()) if mime.startswith(IMAGE_PREFIX) \
                    else t
            out.setdefault(meta["name"], []).append(bundle)
    return out


def collect(folders: list[Path]) -> dict[str, dict]:
    res: dict[str, dict] = {}
    for folder in folders:
        for f in sorted(folder.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in f.parts:
                continue
            res[str(f.relative_to(folder))] = glue_values(json.loads(f.read_text(encoding="utf-8")))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", default=["book/generated"], help="folders of executed notebooks")
    args = ap.parse_args(argv)
    folders = [Path(f) for f in args.folders]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        print(f"glue_values: no such folder: {', '.join(missing)} (run tokenflow reproduce first)", file=sys.stderr)
        return 2
    res = collect(folders)
    if not any(res.values()):
        print(f"glue_values: no glued value in {', '.join(map(str, folders))}", file=sys.stderr)
        return 2
    json.dump(res, sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
    print(f"{sum(len(v) for v in res.values())} glue keys in {len(res)} notebooks", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

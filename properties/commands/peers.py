"""`moegate peers`: each peer kernel, whether its sources, nvcc and a GPU were found, its declared contract;
`moegate peers extract ARCHIVE... --out DIR`: copy out of wheels and sdists only the files the builds need
(a few hundred KB), for a machine that has no package index."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path
from typing import Any

from .common import Out, UsageError, add_common


def cmd_peers(args: argparse.Namespace, out: Out) -> int:
    from ..peers import PEER_NAMES, cache_dir, get_peer
    from ..peers.build import SOURCES_ENV, PeerUnavailable, find_nvcc, find_sources, nvcc_version

    try:
        nvcc = find_nvcc()
        nvcc_text = f"{nvcc} ({nvcc_version(nvcc)})"
    except PeerUnavailable as exc:
        nvcc_text = f"not found: {exc}"
    out(f"nvcc: {nvcc_text}")
    out(f"build cache: {cache_dir()} (set $MOEGATE_CACHE_DIR to move it); sources: ${SOURCES_ENV}, "
        "installed packages, ./.peers")  # fmt: skip
    docs: list[dict[str, Any]] = []
    for name in PEER_NAMES:
        peer = get_peer(name)
        sources_text = "not needed (no build)"
        if name != "compile":
            from ..peers import flashinfer, vllm

            layout = vllm.LAYOUT if name == "vllm" else flashinfer.LAYOUT
            try:
                found = find_sources(layout)
                sources_text = f"{layout.package} {found.version} from {found.origin}"
            except PeerUnavailable as exc:
                sources_text = f"not found: {exc}"
        status = "available" if peer.unavailable is None else f"unavailable: {peer.unavailable}"
        out("")
        out(f"{name}: {peer.description}")
        out(f"  status: {status}")
        out(f"  sources: {sources_text}")
        out(peer.contract.describe())
        docs.append(
            {
                "name": name,
                "description": peer.description,
                "available": peer.unavailable is None,
                "unavailable": peer.unavailable,
                "sources": sources_text,
                "contract": peer.contract.to_dict(),
            }
        )
    if args.json:
        out.json({"command": "peers", "ok": True, "nvcc": nvcc_text, "peers": docs})
    return 0


def cmd_peers_extract(args: argparse.Namespace, out: Out) -> int:
    from ..peers import flashinfer, vllm
    from ..peers.build import PeerUnavailable, extract_archive

    target = Path(args.out)
    written = []
    for archive_text in args.archives:
        archive = Path(archive_text)
        if not archive.is_file():
            raise UsageError(f"{archive}: no such file")
        layouts = (flashinfer.LAYOUT, vllm.LAYOUT)
        layout = next((lay for lay in layouts if re.fullmatch(lay.archive_pattern, archive.name)), None)
        if layout is None:
            raise UsageError(
                f"{archive.name}: not an archive a peer builds from (expected flashinfer_python-*.whl or "
                "vllm-*.tar.gz)"
            )
        try:
            root = extract_archive(layout, archive)
        except PeerUnavailable as exc:
            raise UsageError(str(exc)) from exc
        destination = target / archive.name.removesuffix(".whl").removesuffix(".tar.gz")
        if destination.exists() and not args.force:
            raise UsageError(f"{destination} exists: pass --force to replace it")
        if destination.exists():
            shutil.rmtree(destination)
        for rel in layout.files:
            (destination / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, destination / rel)
        size = sum((destination / rel).stat().st_size for rel in layout.files)
        out(f"{archive.name}: {len(layout.files)} files, {size / 1e3:.0f} kB -> {destination}")
        written.append(str(destination))
    out(f"point $MOEGATE_PEER_SOURCES at {target} (or copy it to ./.peers) where the peers are built")
    if args.json:
        out.json({"command": "peers extract", "ok": True, "written": written})
    return 0


def add_parser(sub: Any) -> None:
    """Add `peers` (and `peers extract`) to the `moegate` subparsers."""
    p = sub.add_parser(
        "peers",
        help="list the peer kernels (FlashInfer, vLLM, torch.compile) and their contracts",
        description="Each peer kernel: whether its sources, nvcc and a GPU were found, and the contract it "
        "declares (what verify draws for it). `moegate peers extract` copies the files a build needs out of "
        "the archives.",
    )
    add_common(p)
    p.set_defaults(func=cmd_peers)
    psub = p.add_subparsers(dest="peers_command", metavar="ACTION")
    e = psub.add_parser(
        "extract",
        help="copy the files the peer builds need out of wheels / sdists",
        description="Copy out of flashinfer_python-*.whl and vllm-*.tar.gz only the files the peer builds "
        "read, into DIR/<archive name>/ (for a GPU machine without a package index).",
    )
    e.add_argument("archives", nargs="+", metavar="ARCHIVE", help="flashinfer_python-*.whl, vllm-*.tar.gz")
    e.add_argument("--out", required=True, metavar="DIR", help="where to write the extracted trees")
    e.add_argument("--force", action="store_true", help="replace an existing extracted tree")
    add_common(e)
    e.set_defaults(func=cmd_peers_extract)

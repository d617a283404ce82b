"""SpikeGLX loader: one recording per imec AP stream; gates/triggers are segments; NP1 gets its LF partner."""

from __future__ import annotations

from pathlib import Path

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.model import DispatchLog, RecordingEntry
from ephys_assets.dispatch.sessions import compat_input_folder


def stream_drop_reason(stream: str) -> str | None:
    """Why a neo SpikeGLX stream is not dispatched (suffix tests, D11), or None to keep it."""
    if stream.endswith("SYNC"):
        return "sync channel stream"
    if stream.startswith("nidq"):
        return "NIDQ stream"
    if stream.startswith("obx"):
        return "OneBox stream"
    if stream.endswith(".lf"):
        return "LF band (paired with its AP stream)"
    return None


def check_bin_sizes(folder: Path) -> None:
    """A ``.bin`` whose size is not a whole number of int16 frames is truncated; say which one."""
    for meta_path in sorted(folder.rglob("*.meta")):
        meta: dict[str, str] = {}
        try:
            for line in meta_path.read_text(errors="strict").splitlines():
                if "=" in line:
                    key, value = line.split("=", 1)
                    meta[key.lstrip("~")] = value
            n_channels = int(meta["nSavedChans"])
        except (UnicodeDecodeError, KeyError, ValueError) as exc:
            raise DispatchError(
                f"corrupt SpikeGLX .meta file ({type(exc).__name__}: {exc}); expected key=value lines "
                "with nSavedChans",
                meta_path,
            ) from None
        bin_path = meta_path.with_suffix(".bin")
        if not bin_path.is_file():
            raise DispatchError("SpikeGLX .meta file without its .bin data file", bin_path)
        size = bin_path.stat().st_size
        if size % (2 * n_channels):
            raise DispatchError(
                f"truncated SpikeGLX .bin: {size} bytes is not a multiple of {n_channels} channels x 2 bytes",
                bin_path,
            )
        expected = meta.get("fileSizeBytes")
        if expected is not None and expected.isdigit() and int(expected) > size:
            raise DispatchError(f"truncated SpikeGLX .bin: {size} bytes, the .meta says {expected}", bin_path)


def load_spikeglx_session(folder: Path, log: DispatchLog) -> list[RecordingEntry]:
    """Entries for every kept stream of one session folder, in neo's stream order."""
    import spikeinterface.extractors as se
    from spikeinterface.extractors.neoextractors import SpikeGLXRecordingExtractor

    check_bin_sizes(folder)
    try:
        stream_names, _ids = SpikeGLXRecordingExtractor.get_streams(folder)
    except Exception as exc:
        raise DispatchError(f"cannot list SpikeGLX streams ({type(exc).__name__}: {exc})", folder) from exc
    entries = []
    for stream in stream_names:
        reason = stream_drop_reason(stream)
        if reason is not None:
            log.drop(f"{folder.name}/{stream}", reason)
            continue
        try:
            raw = se.read_spikeglx(folder, stream_name=stream)
        except Exception as exc:
            raise DispatchError(
                f"cannot read SpikeGLX stream {stream} ({type(exc).__name__}: {exc})", folder
            ) from exc
        lfp = None
        if stream.endswith(".ap"):
            lf_stream = stream[: -len(".ap")] + ".lf"
            if lf_stream in stream_names:
                try:
                    lfp = se.read_spikeglx(folder, stream_name=lf_stream)
                except Exception as exc:
                    log.swallow(f"No LFP stream found for {stream}", exc)
            else:
                log.notes.append(f"No LFP stream found for {stream}")
        entries.append(
            RecordingEntry(
                session_name=folder.name,
                session_folder=folder,
                base_name=f"block0_{stream}_recording",
                raw=raw,
                lfp=lfp,
                input_folder=compat_input_folder(folder),
                stream_name=stream,
            )
        )
    return entries

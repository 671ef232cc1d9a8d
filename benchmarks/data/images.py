"""Reading a user's image files into the uint8 arrays the harness trains on, and saying how.

PNG, JPEG, TIFF and BMP go through Pillow, DICOM (`.dcm`, or a file a CSV names that has the DICOM preamble) through
pydicom (`pip install 'medzoo[dicom]'`). 8-bit images are kept as they are: grayscale as (H, W), colour as (H, W, 3).
Images with more than 8 bits are windowed to 8 bits, and the window is recorded with the dataset:

- a DICOM file's stored values go through its modality LUT (Rescale Slope / Intercept: Hounsfield units for CT),
  then its own first VOI window (Window Center / Width) when it has one; MONOCHROME1 is inverted so that bright is
  dense, as a viewer shows it;
- otherwise (16-bit PNG/TIFF, DICOM without a window) each image's values from its `WINDOW_PERCENTILES` low to high
  percentile map linearly onto 0..255 (clipped): a few hot or dead pixels do not decide the contrast, as dividing
  by 257 let them do.

`fit` brings an image to the model's square input: `pad` (aspect kept: the short side padded with black, centred,
then resized) or `squash` (resized straight to the square, as torchvision's `Resize((s, s))`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from zoo import MedzooError
from zoo.extras import require

WINDOW_PERCENTILES = (0.5, 99.5)
RESIZE_POLICIES = ("pad", "squash")
Resize = Literal["pad", "squash"]
DICOM_SUFFIXES = (".dcm", ".dicom")


class ImageReadError(MedzooError, ValueError):
    """A file is not an image medzoo can read (the message names the file and the fix)."""


@dataclass(frozen=True)
class Pixels:
    """An image as uint8 (H, W) or (H, W, 3), and how its values were brought to 8 bits (for the record)."""

    array: np.ndarray
    how: str


def window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """`values` in [low, high] mapped linearly onto 0..255 (clipped), uint8; a flat window gives black."""
    v = np.asarray(values, dtype=np.float64)
    if not high > low:
        return np.zeros(v.shape, np.uint8)
    return np.clip(np.rint((v - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)


def percentile_window(values: np.ndarray) -> Pixels:
    """The documented rule for images with more than 8 bits and no window of their own."""
    lo, hi = (float(x) for x in np.percentile(values, WINDOW_PERCENTILES))
    if not hi > lo:  # a nearly flat image: its full range, if it has one
        lo, hi = float(np.min(values)), float(np.max(values))
    p_lo, p_hi = WINDOW_PERCENTILES
    return Pixels(window(values, lo, hi), f"window p{p_lo:g}-p{p_hi:g} [{lo:g}, {hi:g}]")


def is_dicom(path: Path, head: bytes) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES or head[128:132] == b"DICM"


def _dicom(path: Path, data: bytes) -> Pixels:
    pydicom = require("pydicom", f"reading {path} (DICOM)")
    apply_modality_lut = require("pydicom.pixels", "reading DICOM").apply_modality_lut
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        raw = ds.pixel_array
    except Exception as e:  # noqa: BLE001 -- pydicom raises many kinds (InvalidDicomError, missing pixel handlers, ...)
        raise ImageReadError(f"{path} is not a readable DICOM image ({type(e).__name__}: {e}). If it is "
                             f"compressed, install a decoder (pip install pylibjpeg pylibjpeg-libjpeg); otherwise "
                             f"replace the file or remove it.") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if (raw.ndim == 3 and raw.shape[-1] != 3) or raw.ndim > 3:
        raise ImageReadError(f"{path} holds {raw.shape} pixels (several frames?): give one 2-D image per file.")
    if raw.ndim == 3:  # colour: pydicom's pixel_array is RGB already (it converts YBR itself)
        return Pixels(raw, "DICOM RGB, 8-bit") if raw.dtype == np.uint8 else percentile_window(raw)
    values = apply_modality_lut(raw, ds).astype(np.float64)
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        c = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
        w = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        out = Pixels(window(values, c - w / 2, c + w / 2), f"DICOM window C {c:g} / W {w:g}")
    else:
        out = percentile_window(values)
        out = Pixels(out.array, f"DICOM, {out.how}")
    if photometric == "MONOCHROME1":
        return Pixels(255 - out.array, out.how + ", MONOCHROME1 inverted")
    return out


def _pillow(path: Path, data: bytes) -> Pixels:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode = img.mode
            if mode in ("1", "L", "LA", "P", "PA") and not (mode.startswith("P") and _has_colour(img)):
                return Pixels(np.asarray(img.convert("L")), "8-bit")
            if mode.startswith(("I", "F")):  # 16-bit / 32-bit grayscale
                return percentile_window(np.asarray(img, dtype=np.float64))
            return Pixels(np.asarray(img.convert("RGB")), "8-bit")
    except UnidentifiedImageError:
        raise ImageReadError(f"{path} is not an image file Pillow can read (PNG, JPEG, TIFF, BMP; DICOM as .dcm): "
                             f"replace it or remove it.") from None
    except (OSError, ValueError) as e:
        raise ImageReadError(f"{path} is not a readable image ({e}): replace it or remove it.") from None


def _has_colour(img: Image.Image) -> bool:
    """Whether a palette image uses colours other than greys."""
    rgb = np.asarray(img.convert("RGB"))
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())


def read_image(path: str | Path, data: bytes | None = None) -> Pixels:
    """One image file as 8-bit pixels (see the module doc); `data`: its bytes, when the caller already read them
    (to hash them)."""
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageReadError(f"{path} cannot be read ({e.strerror or e}): check the path and its "
                                 f"permissions.") from None
    return _dicom(path, data) if is_dicom(path, data[:132]) else _pillow(path, data)


def as_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Grey `(H, W)` or RGB `(H, W, 3)` pixels with `channels` channels: grey is replicated to RGB, RGB becomes its
    ITU-R 601 luma as Pillow converts it; pixels that already match are returned as they are."""
    if channels == 3 and pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    if channels == 1 and pixels.ndim == 3:
        return np.asarray(Image.fromarray(pixels).convert("L"))
    return pixels


def fit(pixels: np.ndarray, size: int, policy: Resize = "pad") -> np.ndarray:
    """`pixels` (H, W[, 3]) uint8 as a `size` x `size` image by `policy` (bilinear resampling)."""
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}: use one of {', '.join(RESIZE_POLICIES)}")
    h, w = pixels.shape[:2]
    if policy == "pad" and h != w:
        side = max(h, w)
        square = np.zeros((side, side) + pixels.shape[2:], np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        square[top:top + h, left:left + w] = pixels
        pixels = square
    if pixels.shape[:2] == (size, size):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))

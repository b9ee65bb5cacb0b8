"""Summarise a region's pixels into one colour and express skin tone as ITA°.

The Individual Typology Angle (Chardon et al., 1991) is the dermatological skin-tone scale
computed from CIELAB: ITA = atan2(L* - 50, b*) in degrees; higher is lighter skin.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLING_STRATEGIES: tuple[str, ...] = ("use_all", "median", "trimmed")
TRIM_FRACTION = 0.10
# Lower bounds (exclusive) of the standard ITA° categories, lightest first.
ITA_CATEGORIES: tuple[tuple[float, str], ...] = (
    (55.0, "very_light"),
    (41.0, "light"),
    (28.0, "intermediate"),
    (10.0, "tan"),
    (-30.0, "brown"),
)
DARKEST_CATEGORY = "dark"
# Below this CIELAB chroma a colour is grey (a black-and-white photo's skin has none: b* = 0 puts
# its ITA° at +-90 by lightness alone). Skin in colour photos has ~15-40, ~1 only near black.
MIN_SKIN_CHROMA = 1.0
_LUMA = np.array([0.2126, 0.7152, 0.0722])
_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def summarize_rgb(pixels: np.ndarray, strategy: str) -> np.ndarray:
    """One [r, g, b] (0-255) for (N, 3) pixels: mean, median, or mean without the 10% darkest
    and 10% brightest pixels (trimmed), which ignores specular highlights and shadows."""
    values = pixels.astype(np.float64)
    if strategy == "use_all":
        return values.mean(axis=0)
    if strategy == "median":
        return np.median(values, axis=0)
    if strategy == "trimmed":
        cut = int(len(values) * TRIM_FRACTION)
        order = np.argsort(luma(values), kind="stable")
        return values[order[cut : len(values) - cut]].mean(axis=0)
    raise ValueError(f"unknown sampling strategy {strategy!r}; use one of {SAMPLING_STRATEGIES}")


def luma(pixels: np.ndarray) -> np.ndarray:
    """Rec. 709 luma (0-255) of (..., 3) sRGB pixels: the brightness people perceive."""
    return np.asarray(pixels, dtype=np.float64) @ _LUMA


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) [L*, a*, b*] of an sRGB colour given on the 0-255 scale."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = _SRGB_TO_XYZ @ linear / _D65_WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def ita_degrees(rgb: np.ndarray) -> float:
    """Individual Typology Angle of an sRGB skin colour."""
    lightness, _, yellowness = srgb_to_lab(rgb)
    return math.degrees(math.atan2(lightness - 50.0, yellowness))


def has_hue(rgb: np.ndarray) -> bool:
    """Whether an sRGB colour is chromatic enough (MIN_SKIN_CHROMA) to have a skin tone."""
    _, redness, yellowness = srgb_to_lab(rgb)
    return math.hypot(redness, yellowness) >= MIN_SKIN_CHROMA


def ita_category(ita: float) -> str:
    """Standard skin-tone category of an ITA° value (very_light > 55 ... dark <= -30)."""
    for lower_bound, name in ITA_CATEGORIES:
        if ita > lower_bound:
            return name
    return DARKEST_CATEGORY

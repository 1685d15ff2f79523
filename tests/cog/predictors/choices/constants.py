# ruff: noqa
SIZES = {"small": 256, "large": 1024}

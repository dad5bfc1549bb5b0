"""Only what pyproject.toml cannot say: the cffi extension ocipy._shim_c and the build of ocipy-init it embeds."""

import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim"))
from build_shim import BuildExt

setup(
    cmdclass={"build_ext": BuildExt},
    cffi_modules=["shim/build_shim.py:ffibuilder"],
)

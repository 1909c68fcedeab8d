"""Builds the C extension converter/_accel.pyx, the converter's value builder: required, as there
is no Python fallback (the rest is in pyproject.toml)."""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("converter._accel", ["converter/_accel.pyx"], include_dirs=lxml.get_include())],
        language_level=3,
    )
)

"""Builds the converter's C extensions (the rest is in pyproject.toml): converter/_accel.pyx, the
engine (libxml2's SAX callbacks into values, records and text), and converter/_emit.pyx, YAML and
CSV output. Both are required: there is no Python fallback. libxml2's headers come with lxml, and
its functions are lxml's own copy, found at import: nothing else to install."""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("converter._accel", ["converter/_accel.pyx"], include_dirs=lxml.get_include()),
         Extension("converter._emit", ["converter/_emit.pyx"])],
        language_level=3,
    )
)

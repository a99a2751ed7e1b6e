"""Build driver: setuptools hands the extension ``twin._core`` to CMake (the pybind11 CMake pattern)."""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str, sourcedir: Path) -> None:
        super().__init__(name, sources=[])
        self.sourcedir = str(sourcedir)


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        import pybind11

        extdir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_type = os.environ.get("TWIN_BUILD_TYPE", "Release")
        build_dir = Path(os.environ.get("TWIN_BUILD_DIR", ROOT / "build" / f"cmake-{build_type.lower()}"))
        build_dir.mkdir(parents=True, exist_ok=True)
        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={build_type}",
            f"-DTWIN_NATIVE={'OFF' if os.environ.get('TWIN_NATIVE', '1') == '0' else 'ON'}",
            "-G",
            "Ninja",
        ]
        subprocess.run(["cmake", "-S", ext.sourcedir, "-B", str(build_dir), *cmake_args], check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel", jobs], check=True)


setup(ext_modules=[CMakeExtension("twin._core", ROOT)], cmdclass={"build_ext": CMakeBuild})

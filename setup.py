"""What pyproject.toml cannot say: the embedded zoo (checkpoints/) ships inside the package as
`dstab/zoo_data`, so a non-editable `pip install .` finds it (dstab.zooindex.zoo_root). Packages are
still discovered (every dstab* folder), so a new subpackage needs no entry here."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["dstab*"]), "dstab.zoo_data"],
    package_dir={"dstab.zoo_data": "checkpoints"},
    package_data={"dstab.zoo_data": ["**/*"]},
)

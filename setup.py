"""Packaging that pyproject.toml cannot say: the import names.

The repository keeps one folder per part (``mockserver/``, ``schemas/``, ``nanobanana/``,
``conformance/``); the install puts all of them under the one import name this project
owns, ``nanobanana_mock``, so nothing it installs can collide with a user's own
``schemas`` or ``conformance`` module. Sub-packages are found, never listed by hand; data
folders (the schemas, the scenarios, the dashboard's ``ui/``) are packages too, so their files
ship with them.
"""

from setuptools import find_namespace_packages, setup

ROOTS = {
    "nanobanana_mock": "mockserver",
    "nanobanana_mock.schemas": "schemas",
    "nanobanana_mock.client": "nanobanana",
    "nanobanana_mock.conformance": "conformance",
}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        subs = find_namespace_packages(folder, exclude=["*__pycache__*"])
        found += [f"{name}.{sub}" for sub in subs]
    return found


setup(
    packages=packages(),
    package_dir=ROOTS,
    package_data={"": ["*.json", "*.yaml"], "nanobanana_mock.ui": ["*.html", "*.css", "*.js"]},
    include_package_data=False,
)

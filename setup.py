"""Packaging for fastkafka; every setting is read from settings.ini (nbdev 2)."""
from configparser import ConfigParser

import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]


def _reqs(key: str) -> list[str]:
    return cfg.get(key, "").split()


licenses = {"apache2": ("Apache Software License 2.0", "OSI Approved :: Apache Software License")}
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable"]
lic = licenses[cfg["license"]]
extras = {name: _reqs(f"{name}_requirements") for name in ("avro", "librdkafka", "metrics", "otel", "test", "docs")}
extras["dev"] = sorted({r for rs in extras.values() for r in rs} | set(_reqs("dev_requirements")))

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=lic[0],
    url=cfg["git_url"],
    keywords=cfg["keywords"],
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"]) - 1],
        "Intended Audience :: " + cfg["audience"].title(),
        "License :: " + lic[1],
        "Natural Language :: " + cfg["language"].title(),
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_packages(include=["fastkafka", "fastkafka.*"]),
    include_package_data=True,
    package_data={"fastkafka": ["py.typed", "_testing/*.xml", "_components/docs_assets/*"]},
    install_requires=_reqs("requirements"),
    extras_require=extras,
    entry_points={
        "console_scripts": cfg["console_scripts"].split("\n"),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)

"""Install physioclr-ext: self-supervised ECG methods as a fairseq-signals plugin.

fairseq-signals itself is not on PyPI; install it from its own repository
(see README.md). Everything in the framework-free core works without it.
"""

from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as fh:
    long_description = fh.read()

setup(
    name="physioclr-ext",
    version="0.1.0",
    description="Self-supervised ECG learning methods as a fairseq-signals plugin",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["physioclr_ext", "physioclr_ext.*"]),
    include_package_data=True,
    package_data={"physioclr_ext": ["py.typed"]},
    install_requires=[
        "torch>=2.1",
        "numpy>=1.21",
        "scipy>=1.8",
        "wfdb>=4.0",
        "scikit-learn>=1.0",
        "pandas>=1.3",
        "tqdm>=4.60",
        "matplotlib>=3.5",
        "PyWavelets>=1.1",  # the hybrid channels' stationary wavelet transform (also a neurokit2 requirement)
        # neurokit2 0.2.13 requires numpy >= 2, which fairseq-signals' environment (Python <= 3.10) cannot take
        "neurokit2>=0.2.7,<0.2.13; python_version < '3.11'",
        "neurokit2>=0.2.7; python_version >= '3.11'",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-timeout>=2.1", "pyyaml>=5.1"],
        "dev": ["pytest>=7", "pytest-timeout>=2.1", "pyyaml>=5.1", "ruff", "mypy"],
    },
    entry_points={
        "console_scripts": [
            "physioclr-hydra-train = physioclr_ext.runners.launcher:train_main",
            "physioclr-hydra-validate = physioclr_ext.runners.launcher:validate_main",
            "physioclr-hydra-inference = physioclr_ext.runners.launcher:inference_main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
    ],
)

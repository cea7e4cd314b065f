"""ament_python package setup: colcon on a ROS 2 install, or pip in the project's venv."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "gap_monitor"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={f"{PACKAGE}.offline.report": ["report_schema.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/scenarios", glob("config/scenarios/*.yaml")),
    ],
    install_requires=["setuptools", "numpy", "pyyaml", "mcap", "lz4", "zstandard", "rosbags"],
    # colcon runs `colcon test` with pytest only when pytest is a declared test dependency.
    extras_require={"test": ["pytest"]},
    zip_safe=True,
    maintainer="gap_monitor maintainers",
    maintainer_email="gap-monitor@example.com",
    description="Training-condition gap monitor for ROS 2 robots (shadow mode)",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "monitor = gap_monitor.ros.monitor_node:main",
            "sim = gap_monitor.ros.sim_node:main",
            "gap-monitor = gap_monitor.cli:main",
        ],
    },
)

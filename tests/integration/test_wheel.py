"""The wheel, built from the repository and installed into a fresh virtualenv, works from any
folder: the defaults (policy, templates, crisis lists), migrations and console pages are
package data, and nothing is looked up through the working directory.

The virtualenv gets the wheel itself; its dependencies come from the test environment
through a ``.pth`` line (no network, and a few seconds instead of a minute), which is checked
not to bring the source tree's ``reminders`` with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
# One wheel and one virtualenv for the module: built once (make test's --dist loadscope keeps
# a module in one pytest-xdist process).
pytestmark = pytest.mark.packaging


def source_files() -> list[str]:
    """What git tracks of the package; outside a git checkout (an unpacked release), every
    file of the package but compiled ones."""
    wanted = ["pyproject.toml", "README.md", "reminders"]
    if (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", *wanted], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.split()  # fmt: skip
        return listed
    files = [path for path in (ROOT / "reminders").rglob("*") if path.is_file()]
    return wanted[:2] + [
        str(path.relative_to(ROOT)) for path in files if "__pycache__" not in path.parts
    ]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the tracked sources, so that nothing stale in ``build/`` or an
    untracked file can make the wheel look complete."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    tracked = source_files()
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(work / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = (work / "dist").glob("reminders-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtualenv holding the wheel; returns its ``bin`` folder."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=False)
    purelib = Path(
        subprocess.run(
            [
                str(env / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (purelib / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    yield env / "bin"


def clean_env(folder: Path) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("REMINDERS_")}
    environ["REMINDERS_DATABASE_URL"] = f"sqlite:///{folder / 'reminders.db'}"
    environ["REMINDERS_ONCALL_EMAILS"] = "oncall@example.org"
    environ.pop("PYTHONPATH", None)
    return environ


def run(bin_dir: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = clean_env(folder)
    return subprocess.run(
        [str(bin_dir / "reminders"), *args],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_wheel_holds_the_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in [
        "reminders/defaults/policy.yaml",
        "reminders/defaults/risk_model.json",
        "reminders/defaults/env.example",
        "reminders/defaults/templates/en/day_before.sms.j2",
        "reminders/defaults/templates/es/day_before.sms.j2",
        "reminders/db/migrations/env.py",
        "reminders/web/staff/pages/base.html",
    ]:
        assert needed in names, needed
    shipped = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "reminders" / "defaults").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped <= names, f"not in the wheel: {sorted(shipped - names)}"
    assert not any(name.startswith(("tests/", "config/", "bench/")) for name in names)


def test_the_installed_wheel_checks_and_sends_from_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import reminders; print(reminders.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed.parent)), f"reminders imported from {where}"

    checked = run(installed, tmp_path, "check")
    assert checked.returncode == 0, checked.stderr
    assert "policy: built-in" in checked.stdout and "templates: built-in" in checked.stdout

    loaded = run(installed, tmp_path, "demo", "--no-run")
    assert loaded.returncode == 0, loaded.stderr
    ticked = run(installed, tmp_path, "tick")
    assert ticked.returncode == 0, ticked.stderr
    sent = [
        json.loads(line)
        for name in ("sms.jsonl", "email.jsonl")
        if (tmp_path / "outbox" / name).exists()
        for line in (tmp_path / "outbox" / name).read_text().splitlines()
    ]
    assert sent, ticked.stdout
    assert all(message["body"].strip() for message in sent)


def test_the_installed_wheel_inits_a_folder_whose_copies_are_used(
    installed: Path, tmp_path: Path
) -> None:
    initialised = run(installed, tmp_path, "init")
    assert initialised.returncode == 0, initialised.stderr
    sms = tmp_path / "templates" / "en" / "ride_home.sms.j2"
    sms.write_text("OUR OWN RIDE TEXT {{ patient.first_name }}")
    shown = run(installed, tmp_path, "templates", "preview", "ride_home", "--channel", "sms")
    assert shown.returncode == 0, shown.stderr
    assert "OUR OWN RIDE TEXT" in shown.stdout


def test_the_installed_daemon_serves_health_and_the_console_with_its_assets(
    installed: Path, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environ = clean_env(tmp_path) | {"REMINDERS_HTTP_PORT": str(port)}
    daemon = subprocess.Popen(
        [str(installed / "reminders"), "run"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert daemon.poll() is None and time.monotonic() < deadline, (
                "the daemon never answered"
            )
            time.sleep(0.2)
        login = httpx.get(f"{base}/staff/login", timeout=5)
        assert login.status_code == 200 and 'name="csrf_token"' in login.text
        css = httpx.get(f"{base}/staff/static/staff.css", timeout=5)
        assert css.status_code == 200 and "{" in css.text
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err

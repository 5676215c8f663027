"""The server's process-wide settings: the device shown before PyTorch is imported, the warm-up."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard import server

REPO = Path(__file__).resolve().parents[2]


class FakeNvml:
    """libnvidia-ml's five calls that `server.nvml_gpu_name` makes, over a list of GPU names."""

    def __init__(self, names, init_status=0):
        self.names, self.init_status, self.shut = names, init_status, False

    def nvmlInit_v2(self):
        return self.init_status

    def nvmlDeviceGetCount_v2(self, count):
        ctypes.cast(count, ctypes.POINTER(ctypes.c_uint)).contents.value = len(self.names)
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index, handle):
        ctypes.cast(handle, ctypes.POINTER(ctypes.c_void_p)).contents.value = index.value + 1
        return 0

    def nvmlDeviceGetName(self, handle, buf, size):
        name = self.names[handle.value - 1].encode()
        ctypes.memmove(buf, name, min(len(name), size.value - 1))
        return 0

    def nvmlShutdown(self):
        self.shut = True
        return 0


@pytest.fixture
def fake_nvml(monkeypatch):
    def install(names, **kw):
        lib = FakeNvml(names, **kw)
        monkeypatch.setattr(ctypes, "CDLL", lambda path: lib)
        return lib

    return install


def test_nvml_names_the_first_gpu_cuda_would_see(fake_nvml, monkeypatch):
    lib = fake_nvml(["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert server.nvml_gpu_name() == "NVIDIA H100 80GB HBM3" and lib.shut
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    assert server.nvml_gpu_name() == "NVIDIA A100-SXM4-40GB"
    for hidden in ("", "-1", "5"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert server.nvml_gpu_name() is None, hidden
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    fake_nvml(["x"], init_status=9)  # NVML_ERROR_DRIVER_NOT_LOADED
    assert server.nvml_gpu_name() is None
    fake_nvml([])
    assert server.nvml_gpu_name() is None


def test_no_nvidia_driver_means_no_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert server.nvml_gpu_name("libdstab-no-such-library.so") is None


@pytest.fixture
def driver_asked_anew():
    """`server.driver_gpu_name` remembers its answer per process: forget it before and after the test."""
    server.driver_gpu_name.cache_clear()
    yield
    server.driver_gpu_name.cache_clear()


def test_device_label_before_torch_is_imported(fake_nvml, monkeypatch, driver_asked_anew):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("DSTAB_THREADS", "3")
    monkeypatch.setattr(server, "torch_imported", lambda: False)
    fake_nvml(["NVIDIA H200"])
    monkeypatch.setattr(server, "torch_cuda_build", lambda: True)
    assert server.device_label() == "cuda (NVIDIA H200)"
    fake_nvml([])  # asked once per process: the driver is not asked again
    assert server.device_label() == "cuda (NVIDIA H200)"
    monkeypatch.setattr(server, "torch_cuda_build", lambda: False)  # a CPU build of torch cannot use it
    server.driver_gpu_name.cache_clear()
    assert server.device_label() == "cpu (3 threads; DSTAB_THREADS)"


def test_the_installed_torch_build_is_read_without_importing_it():
    import torch

    code = "import sys; from dashboard import server; print(server.torch_cuda_build(), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(torch.version.cuda is not None), "False"]


def test_device_label_agrees_with_torch_on_this_machine(monkeypatch):
    import torch

    monkeypatch.setattr(server, "torch_imported", lambda: False)
    before = server.device_label()
    monkeypatch.setattr(server, "torch_imported", lambda: True)  # not torch_ready(): it sets the threads
    after = server.device_label()
    assert before.split(" (")[0] == after.split(" (")[0] == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        assert after == f"cpu ({torch.get_num_threads()} thread{'s' * (torch.get_num_threads() != 1)}; DSTAB_THREADS)"


WARM = r"""
import sys, threading, time
from dashboard import server

def warm_threads():
    return [t for t in threading.enumerate() if t.name == "dstab-torch-warm-up"]

server.WARM_UP_DELAY_S = 0.3
if sys.argv[1] == "cancel":  # a run that starts while the warm-up waits calls it off; its end re-arms it
    server.warm_up()
    server.warm_up()  # one at a time
    first = warm_threads()
    with server.script_run():
        time.sleep(0.5)
        during = ["torch" in sys.modules, first[0].is_alive()]
    second = warm_threads()
    second[0].join(120)
    print(len(first), *during, second[0] is not first[0], server.torch_imported(), "sklearn.datasets" in sys.modules)
elif sys.argv[1] == "wait":  # a run that starts while the warm-up imports waits until it is done
    server.warm_up(delay_s=0)
    time.sleep(0.05)
    with server.script_run():
        print("torch" in sys.modules and server.torch_imported(), "sklearn.datasets" in sys.modules)
elif sys.argv[1] == "served":  # a page imported torch: nothing more is imported behind its fragments
    with server.script_run():
        import torch
    warm_threads()[0].join(120)
    print("sklearn" in sys.modules)
"""


@pytest.mark.parametrize(
    "case, expected",
    [
        ("cancel", ["1", "False", "False", "True", "True", "True"]),
        ("wait", ["True", "True"]),
        ("served", ["False"]),
    ],
)
def test_the_warm_up_never_imports_beside_a_script_run(case, expected):
    env = {"DSTAB_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", WARM, case], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == expected


def test_the_served_config_binds_localhost_and_skips_the_post_run_collection(monkeypatch):
    """`streamlit run app.py` from the checkout reads .streamlit/config.toml: the lab binds 127.0.0.1 only,
    and Streamlit's gc.collect(2) after every script run is off (a job's progress fragment reruns every
    0.25 s; with the collection on, a 1.1 s surface job took 64 s: bench/bench_app_jobs.py)."""
    from streamlit import config

    for name in ("STREAMLIT_RUNNER_POST_SCRIPT_GC", "STREAMLIT_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    try:
        config.get_config_options(force_reparse=True)
        assert config.get_option("runner.postScriptGC") is False
        assert config.get_option("server.address") == "127.0.0.1"
        assert config.get_option("server.fileWatcherType") == "none"
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)

"""DDP through torch.distributed: 2 CPU processes on gloo follow the single-process run."""

from __future__ import annotations

import gc
import os

import pytest
import torch
import torch.multiprocessing as mp

from dstab import distributed
from dstab.training.config import TrainConfig
from dstab.training.trainer import Trainer
from tests.training_helpers import one_thread, tiny_dm  # noqa: F401 (one_thread is a fixture)


def _store(world: int):
    """The rendezvous store, hosted here as torchrun's agent hosts it: bound to a port the OS picks and held
    while the workers run (a port merely found free could be taken before rank 0 binds it)."""
    from torch.distributed import TCPStore

    return TCPStore("127.0.0.1", 0, world_size=world, is_master=True, wait_for_workers=False)


def _worker(rank: int, world: int, port: int, cfg: dict, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    os.environ["TORCHELASTIC_USE_AGENT_STORE"] = "True"  # every rank a client of the store the test holds
    ctx = distributed.from_env()
    trainer = Trainer(TrainConfig.from_dict(cfg), out, ctx=ctx)
    trainer.run()
    if ctx.main:
        torch.save({"net": trainer.net.state_dict(), "sampler": trainer.sampler.state_dict()}, f"{out}/ddp.pt")
    trainer.end_distributed()
    # no DDP wrapper is left to hold the ended group into the interpreter's teardown (see end_distributed)
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, torch.nn.parallel.DistributedDataParallel)]


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_two_gloo_processes_match_one_process(tmp_path):
    cfg = tiny_dm(steps=6, checkpoint_every=None, timesteps={"name": "loss-second-moment", "history": 1})
    store = _store(2)
    mp.spawn(_worker, args=(2, store.port, cfg, str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = Trainer(TrainConfig.from_dict(cfg), tmp_path / "single")
    single.run()
    for k, v in single.net.state_dict().items():
        assert torch.allclose(ddp["net"][k], v, atol=1e-6, rtol=1e-5), k
    # the loss-aware sampler saw every rank's losses, in the single run's order
    assert torch.equal(ddp["sampler"]["counts"], single.sampler.state_dict()["counts"])
    assert torch.allclose(ddp["sampler"]["losses"], single.sampler.state_dict()["losses"], rtol=1e-5)

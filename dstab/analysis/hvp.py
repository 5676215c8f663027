"""Hessian-vector products of a Probe's loss on flat float32 vectors.

Hessian-vector products: ``hvp="reverse"`` differentiates a gradient graph
built once (double backward; 1.7-2.4x faster than forward-over-reverse on CPU
in bench/bench_hessian.py, 4x on the digits UNet), on a GPU batching
independent products (Hutchinson probes, a Lanczos block) into one vmapped backward;
``hvp="forward"`` is torch.func forward-over-reverse jvp(grad(f)), which keeps
no graph between calls. Losses must write squares out: F.mse_loss breaks
forward-over-reverse in torch (pytorch#123996).

Memory (what a 35.7M-parameter UNet needs, bench/RESULTS.md): the operator holds no copy of the
weights (its leaves are aliases of the probe's tensors, which nothing writes), keeps the gradient's
graph but not the gradient's values (a product needs only the graph), and a product accumulates
straight into the flat output vector through the leaves' `.grad` views, with no per-tensor copy.

Micro-batches (`micro_batch=k`, reverse mode): the gradient's graph of the whole batch is what a
product needs most memory for (on the 35.7M UNet at batch 2: ~290 MiB live and ~400 MiB of the double
backward's transients, against 136 MiB of weights). With micro-batches the operator keeps no graph:
each product rebuilds it for k samples at a time (a forward, a backward with its graph, the double
backward) and accumulates the parts, weighted by their share of the batch. Exact where the loss is a
mean over samples with nothing coupling them (GroupNorm, LayerNorm, BatchNorm on running statistics);
the operator checks that the parts' weighted losses sum to the whole batch's (1e-4 relative) and
refuses otherwise. The cost: the forward and first backward recomputed at every product.

Attention: PyTorch's fused scaled-dot-product kernels (flash, memory-efficient, the CPU flash
kernel) have no double backward, so the graph is built and every product taken under
`sdpa_kernel(SDPBackend.MATH)`, whose ops all have one. An operator that still has none (a custom
autograd Function marked once_differentiable, a fused op called directly) is refused with one
`DstabError` naming it.
"""

from __future__ import annotations

import contextlib
import math
import re

import torch

from ..errors import DstabError, require
from ..probes import finite_or_error

HVP_MODES = ("reverse", "forward")
# what PyTorch says when an op has no derivative of the needed order
_NO_SECOND = (
    re.compile(r"derivative for (\S+) is not implemented"),
    re.compile(r"forward AD with (\S+) that does not support it"),
    re.compile(r"(once_differentiable)"),
)


@contextlib.contextmanager
def second_order(custom: list[str] | None = None):
    """Attention through the math kernel (see the module docstring); a missing second derivative
    becomes one DstabError naming the operator (`custom`: the graph's custom Functions, named when
    one of them is the culprit)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    except (RuntimeError, NotImplementedError) as exc:
        raise no_second_derivative(exc, custom) from None


def no_second_derivative(exc: Exception, custom: list[str] | None = None) -> Exception:
    """A DstabError naming the operator without a second derivative, or `exc` itself when PyTorch's
    message is about something else."""
    for pattern in _NO_SECOND:
        found = pattern.search(str(exc))
        if found:
            op = found.group(1)
            if op == "once_differentiable":
                op = ", ".join(custom or []) or "a custom autograd Function"
                op += " (a custom autograd Function marked @once_differentiable)"
            return DstabError(
                f"the Hessian needs second derivatives and PyTorch has none for {op}; "
                "replace that operator in the model (or its loss) by one that can be differentiated twice"
            )
    return exc


def _custom_functions(root) -> dict[str, bool]:
    """The custom autograd Functions in the graph below `root`: name -> whether its backward is marked
    @once_differentiable (whose double backward PyTorch does not always refuse: where the incoming
    gradient needs no graph it silently returns a constant, and a Hessian would miss those terms)."""
    seen, found, todo = set(), {}, [root]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        cls = getattr(node, "_forward_cls", None)
        if cls is not None:
            code = getattr(cls.backward, "__code__", None)
            found[cls.__name__] = getattr(code, "co_qualname", "").startswith("once_differentiable")
        todo.extend(nxt for nxt, _ in node.next_functions)
    return found


def _graph_roots(grads) -> list[tuple[torch.Tensor, int]]:
    """The roots of the double backward, (gradient, parameter index): the gradients that depend on the
    parameters (a loss linear in some tensor gives it a constant gradient: its Hessian rows are zero),
    their values freed (a product needs the gradient's graph, not its values)."""
    roots = [(g, i) for i, g in enumerate(grads) if g.requires_grad]
    for g, _ in roots:
        g.data = g.new_zeros(()).expand(g.shape)
    return roots


def _require_finite(loss: float) -> None:
    require(
        math.isfinite(loss),
        f"the probe's loss is {loss} at the analysed parameters; the Hessian is undefined there "
        "(check the checkpoint and the probe's batch)",
    )


class NotAMean(DstabError):
    """The probe's loss is not the mean of its samples' losses: micro-batches would change the Hessian."""


class HessianOperator:
    """v -> H v for a probe's loss at the probe's parameters, on flat float32 vectors.

    Never writes to the probe's tensors (and so never to any caller's model).
    """

    def __init__(self, probe, hvp: str = "reverse", micro_batch: int | None = None):
        require(hvp in HVP_MODES, f"unknown hvp mode {hvp!r}; choose one of {list(HVP_MODES)}")
        require(
            micro_batch is None or hvp == "reverse",
            "micro-batches are for hvp='reverse' (forward-over-reverse keeps no graph between products)",
        )
        finite_or_error(probe.params, probe.name)
        self.probe, self.mode = probe, hvp
        self.names = list(probe.params)
        require(self.names, "the probe has no parameters to analyse")
        # aliases of the probe's float32 tensors (a copy only for other dtypes): no second copy of the weights
        self.leaves = [probe.params[k].detach().float().requires_grad_(True) for k in self.names]
        self.shapes = [p.shape for p in self.leaves]
        self.sizes = [p.numel() for p in self.leaves]
        self.n = sum(self.sizes)
        self.device = self.leaves[0].device
        self.calls = 0
        self.vmap = self.device.type == "cuda"  # batched products as one vmapped backward (see batched)
        split = getattr(probe, "split", None)  # a probe without one (the Probe contract's minimum) runs whole
        self.parts = split(micro_batch) if micro_batch and split is not None else None
        self.micro_batch = micro_batch if self.parts else None
        if self.parts:
            self._roots = []
            self._build_parts()
            return
        with second_order():
            loss = self._loss(self.leaves)
        self.loss = float(loss.detach())
        self._check_loss(loss)
        with second_order():
            grads = torch.autograd.grad(
                loss, self.leaves, create_graph=hvp == "reverse", allow_unused=True, materialize_grads=True
            )
        self.grad_norm = math.sqrt(sum(float(g.detach().double().pow(2).sum()) for g in grads))
        self._roots = _graph_roots(grads) if hvp == "reverse" else []
        del loss, grads

    def _build_parts(self) -> None:
        """The loss and gradient norm from the micro-batches (no graph kept), checked against the whole
        batch's loss (computed without a graph)."""
        with torch.no_grad(), second_order():
            whole = float(self._loss(self.leaves))
        _require_finite(whole)
        total = 0.0
        try:
            for i, (share, part) in enumerate(self.parts):
                with second_order(), torch.enable_grad():
                    loss = self._loss(self.leaves, part) * share
                if i == 0:
                    self._check_loss(loss)
                total += float(loss.detach())
                with second_order(self._custom), torch.enable_grad():
                    loss.backward(inputs=self.leaves)
            self.grad_norm = math.sqrt(sum(float(leaf.grad.double().pow(2).sum()) for leaf in self.leaves))
        finally:
            for leaf in self.leaves:
                leaf.grad = None
        self.loss = whole
        if abs(total - whole) > 1e-4 * max(abs(whole), 1e-30):
            raise NotAMean(
                f"{self.probe.name}: the loss is not the mean of its samples' losses (whole batch {whole:.8g}, its "
                f"{len(self.parts)} micro-batches {total:.8g}): something couples the samples (BatchNorm on batch "
                "statistics, a loss that is not a mean), so products cannot be taken by micro-batch; take them on "
                "the whole batch (micro_batch=0)"
            )

    def _check_loss(self, loss: torch.Tensor) -> None:
        """The loss has a gradient, a finite value, and no custom Function without a double backward."""
        _require_finite(float(loss.detach()))
        require(
            loss.requires_grad,
            f"{self.probe.name}: the loss does not depend on the parameters being analysed (it has no gradient), so "
            "its Hessian is not defined; make the loss call the model it is given",
        )
        custom = _custom_functions(loss.grad_fn)
        self._custom = sorted(custom)
        once = sorted(name for name, marked in custom.items() if marked)
        if once:
            raise no_second_derivative(RuntimeError("once_differentiable"), once)

    def _loss(self, tensors, probe=None) -> torch.Tensor:
        loss = (probe or self.probe).loss(dict(zip(self.names, tensors)))
        require(loss.dim() == 0, f"a probe's loss must be a scalar, got shape {tuple(loss.shape)}")
        return loss

    def unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        """Views of a flat vector (or of each row of a (B, n) block) shaped as the parameters."""
        lead = v.shape[:-1]
        return [t.view(*lead, *s) for t, s in zip(torch.split(v, self.sizes, dim=-1), self.shapes)]

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return self.batched(v[None])[0]

    def batched(self, V: torch.Tensor) -> torch.Tensor:
        """H V^T for the rows of V (B, n): on a GPU as one vmapped backward pass in reverse mode, on a
        CPU one product per row (the vmapped backward is no faster there: 1.0x per product on the
        toy MLP, 1.1-1.4x slower on the digits UNet, bench/RESULTS.md)."""
        self.calls += V.shape[0]
        out = torch.zeros_like(V)
        if not self._roots and self.mode == "reverse" and not self.parts:  # the loss is linear in them: H = 0
            return out
        with second_order(self._custom):
            if self.mode == "forward":
                for i, v in enumerate(V):
                    out[i] = self._forward_over_reverse(v)
            elif self.parts:
                for v, o in zip(V, out):
                    self._reverse_parts(v, o)
            elif self.vmap and V.shape[0] > 1:
                self._vmapped(V, out)
            else:
                for v, o in zip(V, out):
                    self._reverse(v, o)
        return out

    def _reverse(self, v: torch.Tensor, out: torch.Tensor) -> None:
        """out += H v from the gradient's graph built once (kept for the next product)."""
        self._double_backward(self._roots, v, out, retain=True)

    def _double_backward(self, roots, v: torch.Tensor, out: torch.Tensor, retain: bool) -> None:
        """out += the Hessian-vector product of `roots` (`_graph_roots`) with v: the double backward
        accumulates in place into `out` through the leaves' .grad."""
        if not roots:
            return
        for leaf, view in zip(self.leaves, self.unflatten(out)):
            leaf.grad = view
        parts = self.unflatten(v)
        try:
            torch.autograd.backward(
                [g for g, _ in roots],
                grad_tensors=[parts[i] for _, i in roots],
                inputs=self.leaves,
                retain_graph=retain,
            )
        finally:
            for leaf in self.leaves:
                leaf.grad = None

    def _reverse_parts(self, v: torch.Tensor, out: torch.Tensor) -> None:
        """out += H v, one micro-batch at a time: its gradient's graph built, differentiated, freed."""
        for share, part in self.parts:
            with torch.enable_grad():  # the graph is built here, whatever the caller's grad mode
                loss = self._loss(self.leaves, part) * share
                grads = torch.autograd.grad(
                    loss, self.leaves, create_graph=True, allow_unused=True, materialize_grads=True
                )
            roots = _graph_roots(grads)
            del loss, grads
            self._double_backward(roots, v, out, retain=False)
            del roots

    def _vmapped(self, V: torch.Tensor, out: torch.Tensor) -> None:
        parts = self.unflatten(V)
        hv = torch.autograd.grad(
            [g for g, _ in self._roots],
            self.leaves,
            grad_outputs=[parts[i] for _, i in self._roots],
            retain_graph=True,
            is_grads_batched=True,
            allow_unused=True,
            materialize_grads=True,
        )
        for o, h in zip(self.unflatten(out), hv):
            o.copy_(h)

    def _forward_over_reverse(self, v: torch.Tensor) -> torch.Tensor:
        primals = tuple(p.detach() for p in self.leaves)
        _, hv = torch.func.jvp(
            torch.func.grad(lambda *ps: self._loss(ps), argnums=tuple(range(len(primals)))),
            primals,
            tuple(self.unflatten(v)),
        )
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    def gaussian(self, gen: torch.Generator) -> torch.Tensor:
        """A standard normal vector, drawn per parameter tensor in order on the CPU (device independent),
        written into one flat vector (no per-tensor copies held)."""
        out = torch.empty(self.n)
        for part, s in zip(torch.split(out, self.sizes), self.shapes):
            part.copy_(torch.randn(s, generator=gen).reshape(-1))
        return out.to(self.device)

    def rademacher(self, gen: torch.Generator) -> torch.Tensor:
        """A +-1 vector drawn per parameter tensor in order, as PyHessian draws its own
        (randint(0, 2) then 0 -> -1): with the same seed both engines start from the same vector.
        Each tensor's integer draw is converted as it is made (an int64 vector of n would be 2 copies)."""
        out = torch.empty(self.n)
        for part, s in zip(torch.split(out, self.sizes), self.shapes):
            part.copy_(torch.randint(0, 2, s, generator=gen).reshape(-1))
        return out.mul_(2).sub_(1).to(self.device)

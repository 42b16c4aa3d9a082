"""The pieces the fused time loop (:mod:`neurornn.models.fused`) runs on.

- :func:`activate` and :func:`derivative`: the activations and ``alpha f'`` written
  in place into given buffers, with the values torch's own functions and autograd give;
- :class:`BufferPool` (one instance, :data:`pool`): large CPU scratch buffers reused
  between calls;
- :class:`Layout`: the buffers' time-major memory layout behind batch-first views,
  and the GEMMs of one network (``mm``) or an ensemble (``bmm``).
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

__all__ = ["FUSED_ACTIVATIONS", "BufferPool", "Layout", "activate", "copy_or_zeros", "derivative", "pool"]

FUSED_ACTIVATIONS = ("relu", "tanh", "sigmoid", "rectified_tanh", "softplus", "identity")


# --------------------------------------------------------------------------- activations
def activate(name: str, z: Tensor, out: Tensor) -> None:
    """``out <- f(z)`` for the activations of ``ACTIVATION_FUNCTIONS`` (same values)."""
    if name == "relu":
        torch.clamp_min(z, 0, out=out)
    elif name == "tanh":
        torch.tanh(z, out=out)
    elif name == "sigmoid":
        torch.sigmoid(z, out=out)
    elif name == "rectified_tanh":
        torch.tanh(z, out=out)
        out.clamp_min_(0)
    elif name == "softplus":
        out.copy_(torch.nn.functional.softplus(z))
    elif name == "identity":
        out.copy_(z)
    else:  # pragma: no cover - guarded by fused_unsupported_reason
        raise ValueError(f"activation {name!r} has no fused form")


def derivative(name: str, z: Tensor, scale: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """``scale * f'(z)`` exactly as torch's autograd computes ``f'`` (into ``out`` if given).

    ``scale`` (broadcastable, e.g. ``alpha``) is folded into the same passes.
    """
    d = torch.empty_like(z) if out is None else out
    if name == "relu":
        torch.gt(z, 0, out=d)  # 1.0 / 0.0 written straight into the float buffer
        return d if scale is None else d.mul_(scale)
    if name == "tanh":
        torch.tanh(z, out=d)
        d.mul_(d).neg_().add_(1)
    elif name == "sigmoid":
        torch.sigmoid(z, out=d)
        d.addcmul_(d, d, value=-1)  # s (1 - s)
    elif name == "rectified_tanh":
        torch.tanh(z, out=d)
        mask = torch.gt(d, 0, out=pool.empty(z.shape, z.dtype, z.device))
        d.mul_(d).neg_().add_(1).mul_(mask)
    elif name == "softplus":  # torch: grad 1 above the threshold 20, sigmoid below
        torch.sigmoid(z, out=d).masked_fill_(z > 20, 1.0)
    elif name == "identity":
        d.fill_(1)
    else:  # pragma: no cover
        raise ValueError(f"activation {name!r} has no fused form")
    return d if scale is None else d.mul_(scale)


# --------------------------------------------------------------------------- buffer pool
class BufferPool:
    """Reuses large CPU scratch buffers across calls.

    Faulting in fresh pages is slow (it dominated the fused loop on the 2-core
    benchmark machine), and glibc hands large freed blocks back to the OS, so
    every training step paid for new pages. A buffer is handed out again only
    when no tensor anywhere still uses its storage. CUDA has its own caching
    allocator: there buffers come from ``torch.empty``.
    """

    min_bytes = 1 << 20  # smaller tensors come from torch.empty (malloc reuses them well)
    max_buffers = 32  # kept at most, oldest dropped first ...
    max_bytes = 1 << 30  # ... and at most this much memory

    def __init__(self) -> None:
        self._kept: list[Tensor] = []  # oldest first
        self._lock = threading.Lock()
        self.enabled = True

    def empty(self, shape, dtype: torch.dtype, device: torch.device) -> Tensor:
        shape = tuple(shape)
        numel = 1
        for n in shape:
            numel *= n
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        if (not self.enabled or torch.device(device).type != "cpu" or nbytes < self.min_bytes
                or nbytes > self.max_bytes or _use_count is None):
            return torch.empty(shape, dtype=dtype, device=device)
        with self._lock:
            for buf in self._kept:  # any free buffer of the same size and dtype, whatever its shape
                if (buf.numel() == numel and buf.dtype == dtype
                        and _use_count(buf.untyped_storage()._cdata) <= 2):  # only the pool holds it
                    return _alias(buf, shape)
            buf = torch.empty((numel,), dtype=dtype, device=device)
            self._kept.append(buf)
            total = sum(b.numel() * b.element_size() for b in self._kept)
            while len(self._kept) > self.max_buffers or total > self.max_bytes:
                old = self._kept.pop(0)  # a buffer still in use stays alive through its users
                total -= old.numel() * old.element_size()
            return _alias(buf, shape)

    def clear(self) -> None:
        """Drop every kept buffer (memory goes back to the allocator)."""
        with self._lock:
            self._kept.clear()


def _alias(buf: Tensor, shape: tuple) -> Tensor:
    """A new contiguous tensor of ``shape`` on ``buf``'s storage (so the storage's use
    count shows it is taken)."""
    out = torch.empty((0,), dtype=buf.dtype, device=buf.device)
    return out.set_(buf.untyped_storage(), 0, shape, torch.empty(shape, device="meta").stride())


_use_count = getattr(torch._C, "_storage_Use_Count", None)
pool = BufferPool()


# --------------------------------------------------------------------------- layout helpers
class Layout:
    """Shapes and GEMMs of one network (2-D ``mm``) or an ensemble (batched ``bmm``).

    Every buffer is seen batch first, as the caller holds it: (batch, time, units)
    or (networks, batch, time, units), and the step ``t`` is the view ``x[..., t, :]``.
    Underneath, the buffers are time-major, so that a step is one contiguous block
    (the hardware prefetchers stream it; strided rows cost about 6 % more in the
    loop) and the rows of all steps in (time, batch) order form one matrix for the
    weight-gradient GEMM, where ``q_t`` pairs with ``r_{t-1}`` by an offset of one
    step. One network: (time, batch, units). Ensemble: (networks, time, batch,
    units), except the buffers the per-step GEMM accumulates into, which are
    (time, networks, batch, units): ``baddbmm_`` falls back to one small GEMM per
    network when its output is not contiguous (measured 5x slower).

    :class:`~neurornn.models.RNN` and :class:`~neurornn.models.ensemble.RNNEnsemble`
    do their input and readout GEMMs in the same (time, batch) row order, so the
    drive, the rates and their gradients are never transposed in memory.
    """

    def __init__(self, single: bool) -> None:
        self.single = single
        if single:
            self.acc = Tensor.addmm_  # out += a @ b
            self.mm = torch.mm
            self.addmm = torch.addmm
        else:
            self.acc = Tensor.baddbmm_
            self.mm = torch.bmm
            self.addmm = torch.baddbmm

    def alpha(self, alpha: Tensor, w: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """``alpha`` broadcastable to a step (batch, units) / (networks, batch, units)
        and to a whole buffer (batch, time, units) / (networks, batch, time, units)."""
        n_units = w.shape[-1]
        a = alpha.to(dtype=like.dtype, device=like.device)
        if a.ndim == 0:
            a = a.expand(n_units)
        if self.single:
            if a.numel() != n_units:
                raise ValueError(f"alpha must have shape (units,), got {tuple(alpha.shape)}")
            a = a.reshape(n_units)
            return a, a
        n_nets = w.shape[0]
        a = a.reshape(-1, a.shape[-1])
        if a.shape[0] not in (1, n_nets) or a.shape[-1] != n_units:
            raise ValueError(f"alpha must broadcast to (networks, 1, units), got {tuple(alpha.shape)}")
        return a.unsqueeze(1), a[:, None, None, :]

    def scale_rows(self, a_step: Tensor, w: Tensor) -> Tensor:
        """``diag(alpha) W`` (row i scaled by alpha_i)."""
        return (a_step.unsqueeze(-1) if self.single else a_step.transpose(-1, -2)) * w

    def new(self, like: Tensor, gemm_out: bool = False) -> Tensor:
        """A pooled buffer seen as the batch-first ``like`` (see the class docstring).

        ``gemm_out``: the per-step GEMMs accumulate into it in place (an ensemble
        then gets (time, networks, batch, units), else (networks, time, batch, units)).
        """
        if self.single:
            batch, time_steps, n_units = like.shape
            return pool.empty((time_steps, batch, n_units), like.dtype, like.device).transpose(0, 1)
        n_nets, batch, time_steps, n_units = like.shape
        if gemm_out:
            return pool.empty((time_steps, n_nets, batch, n_units), like.dtype, like.device).permute(1, 2, 0, 3)
        return pool.empty((n_nets, time_steps, batch, n_units), like.dtype, like.device).transpose(1, 2)

    def steps(self, x: Tensor) -> tuple[Tensor, ...]:
        """Per-step views ``x[..., t, :]`` of a buffer seen batch first."""
        return x.unbind(-2)

    def first(self, x: Tensor) -> Tensor:
        return x[..., 0, :]

    def weight_grad(self, q: Tensor, rates: Tensor, r_init: Tensor) -> Tensor:
        """``sum_{trials, t} q_t^T r_{t-1}`` from ``q`` and ``rates`` seen (E?, B, T, N): (E?, N, N).

        ONE GEMM over all time steps and trials: in (time, batch) row order, the rows
        of ``q`` from step 1 on pair with the rows of ``rates`` up to step T - 2;
        ``t = 0`` pairs with the initial rates. (``reshape`` is free on the loop's
        time-major buffers and copies otherwise, so any layout gives the same result.)
        """
        mT = lambda x: x.transpose(-1, -2)  # noqa: E731
        batch, time_steps, n_units = q.shape[-3:]
        lead = q.shape[:-3]
        g_w = self.mm(mT(q[..., 0, :]), r_init)
        if time_steps > 1:  # rows in (time, batch) order pair up exactly
            rows = (time_steps - 1) * batch
            q_tb, r_tb = q.transpose(-3, -2), rates.transpose(-3, -2)  # views of the (E?, T, B, N) buffers
            self.acc(g_w, mT(q_tb[..., 1:, :, :].reshape(*lead, rows, n_units)),
                     r_tb[..., :-1, :, :].reshape(*lead, rows, n_units))
        return g_w


def copy_or_zeros(lay: Layout, g: Tensor | None, like: Tensor, gemm_out: bool = False) -> Tensor:
    """A new (pooled) copy of an output gradient (zeros when None)."""
    out = lay.new(like, gemm_out)
    return out.zero_() if g is None else out.copy_(g)

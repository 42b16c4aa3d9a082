"""The fused time loop: a hand-written backpropagation through time.

This module re-derives, for speed, the update written in
:mod:`neurornn.models.dynamics` (the one source of the equations); the tests in
``tests/test_fused.py`` hold it equal to :func:`~neurornn.models.dynamics.reference_loop`
(forward to float32 rounding, gradients against autograd through the reference
loop and ``torch.autograd.gradcheck`` in float64).

What makes it fast
------------------
- ``alpha`` is folded into the recurrent matrix once (``W_a = diag(alpha) W``) and
  ``alpha * drive + noise`` is computed for all time steps at once, so each forward
  step is one in-place GEMM, one multiply-add and the activation, written into
  preallocated time-major buffers (no per-step allocation, no autograd graph).
- The backward pass runs the adjoint recursion by hand (one GEMM and two
  multiply-adds per step) and forms the ``W_rec`` gradient as ONE GEMM over all
  time steps and trials.
- Only the time-major states and rates and, in the rate form, the pre-activations
  are kept for the backward pass; ``alpha f'`` is recomputed from them in one
  vectorised pass.
- Large CPU buffers are reused between calls (:class:`_BufferPool`): faulting in
  fresh pages cost as much as the arithmetic on the benchmark machine.

Adjoint equations (``q_t`` is the gradient of the loss w.r.t. the drive at ``t``)
-------------------------------------------------------------------------------
current form (``g_t`` the total gradient of ``r_t``)::

    g_t = dL/dr_t (direct) + q_{t+1} @ W
    q_t = alpha dL/dx_t (direct) + (1 - alpha) q_{t+1} + alpha f'(x_t + n_pre_t) g_t
    dW  = sum_t q_t^T r_{t-1},   dL/dx0 = (1 - alpha) q_0 / alpha + f'(x0) (q_0 @ W)

rate form, ``mu_t = dL/dr_t``::

    mu_t = dL/dr_t (direct) + (1 - alpha) mu_{t+1} + q_{t+1} @ W
    q_t  = alpha f'(p_t) mu_t,   dW = sum_t q_t^T r_{t-1}

When it applies
---------------
:func:`fused_unsupported_reason` says why the fused loop cannot run (``None`` when
it can): a dtype other than float32/float64, an ``alpha`` that requires a gradient,
weights that are not ``(units, units)`` or ``(networks, units, units)``, or a
``torch.func`` transform (vmap, jacrev, jvp) being active. Double backward
(``create_graph=True``) is supported by recomputing the backward pass through the
reference loop with autograd.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

from .dynamics import Dynamics, StepNoise, reference_loop

__all__ = ["fused_loop", "fused_unsupported_reason", "clear_buffers", "SUPPORTED_DTYPES"]

SUPPORTED_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------- activations
def _activate(name: str, z: Tensor, out: Tensor) -> None:
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


def _derivative(name: str, z: Tensor, scale: Tensor | None = None, out: Tensor | None = None) -> Tensor:
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
        mask = torch.gt(d, 0, out=_pool.empty(z.shape, z.dtype, z.device))
        d.mul_(d).neg_().add_(1).mul_(mask)
    elif name == "softplus":  # torch: grad 1 above the threshold 20, sigmoid below
        torch.sigmoid(z, out=d).masked_fill_(z > 20, 1.0)
    elif name == "identity":
        d.fill_(1)
    else:  # pragma: no cover
        raise ValueError(f"activation {name!r} has no fused form")
    return d if scale is None else d.mul_(scale)


class _BufferPool:
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
_pool = _BufferPool()


def clear_buffers() -> None:
    """Release the scratch buffers the fused loop keeps for reuse (CPU)."""
    _pool.clear()


_FUSED_ACTIVATIONS = ("relu", "tanh", "sigmoid", "rectified_tanh", "softplus", "identity")


# --------------------------------------------------------------------------- layout helpers
def _to_time_major(x: Tensor, single: bool) -> Tensor:
    """(batch, time, units) or (networks, batch, time, units) -> new contiguous (time, networks, batch, units)."""
    view = _time_major_view(x, single)
    return _pool.empty(view.shape, x.dtype, x.device).copy_(view)


def _time_major_view(x: Tensor, single: bool) -> Tensor:
    """(batch, time, units) or (networks, batch, time, units) -> view (time, networks, batch, units)."""
    if single:
        x = x.unsqueeze(0)
    return x.permute(2, 0, 1, 3)


def _mul_time_major(x: Tensor, a: Tensor, single: bool) -> Tensor:
    """``a * x`` as a new contiguous (time, networks, batch, units) tensor, in one pass."""
    view = _time_major_view(x, single)
    return torch.mul(view, a, out=_pool.empty(view.shape, x.dtype, x.device))


def _batch_first(x: Tensor, single: bool) -> Tensor:
    """A contiguous (batch, time, units) or (networks, batch, time, units) copy of a
    time-major buffer, in a reused buffer (its consumers, e.g. the readout GEMM, want it contiguous)."""
    view = _from_time_major(x, single)
    return _pool.empty(view.shape, x.dtype, x.device).copy_(view)


def _from_time_major(x: Tensor, single: bool) -> Tensor:
    """(time, networks, batch, units) -> view (batch, time, units) or (networks, batch, time, units)."""
    if single:  # squeeze, not [0]: its backward is a view, not a zero-filled copy
        return x.squeeze(1).permute(1, 0, 2)
    return x.permute(1, 2, 0, 3)


def _alpha_of(alpha: Tensor, n_nets: int, n_units: int, like: Tensor) -> Tensor:
    """``alpha`` as (networks or 1, 1, units)."""
    a = alpha.to(dtype=like.dtype, device=like.device)
    if a.ndim == 0:
        a = a.expand(n_units)
    a = a.reshape(-1, a.shape[-1])
    if a.shape[0] not in (1, n_nets) or a.shape[-1] != n_units:
        raise ValueError(f"alpha must broadcast to (networks, 1, units), got {tuple(alpha.shape)}")
    return a.unsqueeze(1)


# --------------------------------------------------------------------------- the Function
class _FusedLoop(torch.autograd.Function):
    """The loop runs on time-major buffers (time, networks, batch, units); the outputs are
    batch-first copies: (states, rates) in the current form, (rates,) in the rate form
    (where the states are the rates)."""

    @staticmethod
    def forward(ctx, drive, w_rec, x0, n_rec, n_pre, n_post, dynamics, single):
        # drive, n_*: (B, T, N) or (E, B, T, N); w_rec (N, N) or (E, N, N); x0 (E?, B, N)
        form, activation = dynamics.form, dynamics.activation
        w = w_rec.unsqueeze(0) if single else w_rec  # (E, N, N)
        n_nets, n_units = w.shape[0], w.shape[-1]
        a = _alpha_of(dynamics.alpha, n_nets, n_units, drive)  # (E|1, 1, N)
        x_init = x0.unsqueeze(0) if single else x0  # (E, B, N)
        time_steps = drive.shape[-2]
        ctx.dynamics, ctx.single, ctx.a = dynamics, single, a
        ctx.set_materialize_grads(False)  # an unused output (often the states) gets None, not zeros
        ctx.has_noise = (n_rec is not None, n_pre is not None, n_post is not None)
        inputs = (drive, w_rec, x0, n_rec, n_pre, n_post)
        ctx.present = tuple(x is not None for x in inputs)
        keep = [x for x in inputs if x is not None]  # for double backward (no copies)

        if form == "current":
            oma = 1 - a
            w_a = (a.transpose(-1, -2) * w).contiguous()  # diag(alpha) W: (E, N, N)
            w_aT = w_a.transpose(-1, -2).contiguous()
            # the states buffer is prefilled with alpha * drive + n_rec (all steps at once)
            states = _mul_time_major(drive, a, single)
            if n_rec is not None:
                states.add_(_time_major_view(n_rec, single))
            pre = None if n_pre is None else _to_time_major(n_pre, single)
            post = None if n_post is None else _to_time_major(n_post, single)
            rates = _pool.empty(states.shape, states.dtype, states.device)
            r0 = torch.empty_like(x_init)
            _activate(activation, x_init, r0)
            tmp = torch.empty_like(x_init) if pre is not None else None
            x_prev, r_prev = x_init, r0
            xs, rs = states.unbind(0), rates.unbind(0)  # per-step views, made once
            if pre is None and post is None:  # the common case, kept lean
                for x_t, r_t in zip(xs, rs):
                    x_t.baddbmm_(r_prev, w_aT)
                    x_t.addcmul_(x_prev, oma)
                    _activate(activation, x_t, r_t)
                    x_prev, r_prev = x_t, r_t
            else:
                for t in range(time_steps):
                    x_t, r_t = xs[t], rs[t]
                    x_t.baddbmm_(r_prev, w_aT)
                    x_t.addcmul_(x_prev, oma)
                    if pre is None:
                        _activate(activation, x_t, r_t)
                    else:
                        torch.add(x_t, pre[t], out=tmp)
                        _activate(activation, tmp, r_t)
                    if post is not None:
                        r_t.add_(post[t])
                    x_prev, r_prev = x_t, r_t
            z = states if pre is None else pre.add_(states)  # argument of f at each step
            # rates: a contiguous batch-first copy (the readout GEMM wants one, and the
            # backward pass reads it; the time-major buffer goes back to the pool);
            # states: a view (often unused)
            rates_bf = _batch_first(rates, single)
            del rates
            ctx.save_for_backward(w_a, x_init, r0, z, rates_bf, *keep)
            return _from_time_major(states, single), rates_bf
        # rate form: p_t = r_{t-1} W^T + drive_t + n_rec_t + n_pre_t,
        #            r_t = lerp(r_{t-1}, f(p_t) + n_post_t, alpha)
        pre_act = _to_time_major(drive, single)
        for n in (n_rec, n_pre):
            if n is not None:
                pre_act.add_(_time_major_view(n, single))
        post = None if n_post is None else _to_time_major(n_post, single)
        rates = _pool.empty(pre_act.shape, pre_act.dtype, pre_act.device)
        act = torch.empty_like(x_init)
        a_full = a.expand_as(x_init)
        w_T = w.transpose(-1, -2).contiguous()
        r_prev = x_init
        for t, (p_t, r_t) in enumerate(zip(pre_act.unbind(0), rates.unbind(0))):
            p_t.baddbmm_(r_prev, w_T)
            _activate(activation, p_t, act)
            if post is not None:
                act.add_(post[t])
            torch.lerp(r_prev, act, a_full, out=r_t)
            r_prev = r_t
        rates_bf = _batch_first(rates, single)
        del rates
        ctx.save_for_backward(w.contiguous(), x_init, pre_act, rates_bf, *keep)
        return (rates_bf,)

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():  # create_graph=True: differentiate the reference loop
            return _reference_backward(ctx, grads)
        single, a, activation = ctx.single, ctx.a, ctx.dynamics.activation
        # the outputs are batch first: read their gradients through time-major views
        grads = tuple(None if g is None else _time_major_view(g, single) for g in grads)
        oma = 1 - a
        need = ctx.needs_input_grad
        g_rec = g_pre = g_post = g_x0 = None
        if ctx.dynamics.form == "current":
            w_a, x_init, r0, z, rates = ctx.saved_tensors[:5]
            w_rec = ctx.saved_tensors[6]  # the inputs follow: drive, w_rec, ...
            w = w_rec.unsqueeze(0) if single else w_rec
            g_states, g_rates = grads
            afp = _derivative(activation, z, a, _pool.empty(z.shape, z.dtype, z.device))  # alpha f'(z_t)
            # q_t = alpha lam_t = dL/d(drive_t), with g_t the total dL/dr_t:
            #   g_t = dL/dr_t (direct) + q_{t+1} @ W
            #   q_t = alpha dL/dx_t (direct) + (1 - alpha) q_{t+1} + alpha f'_t g_t
            keep_g = need[4] or need[5]  # the noise gradients need every g_t
            if keep_g:
                g_all = _copy_or_zeros(g_rates, z)
            g_direct = g_rates  # time-major (maybe strided) view, read only
            q = _pool.empty(z.shape, z.dtype, z.device)
            time_steps = q.shape[0]
            qs, afps = q.unbind(0), afp.unbind(0)
            last = time_steps - 1
            if keep_g:
                gs = g_all.unbind(0)
            else:
                g_small = torch.empty_like(z[0])  # one small buffer, hot in cache
                if g_direct is None:
                    g_small.zero_()
                else:
                    g_small.copy_(g_direct[last])
                    g_dir = g_direct.unbind(0)
                gs = [g_small] * time_steps
            if g_states is None:
                torch.mul(afps[last], gs[last], out=qs[last])
            else:
                torch.mul(g_states[last], a, out=qs[last])
                qs[last].addcmul_(afps[last], gs[last])
            if not keep_g and g_states is None:  # the common case, kept lean
                if g_direct is None:
                    for t in range(last - 1, -1, -1):
                        q_next, q_t = qs[t + 1], qs[t]
                        torch.bmm(q_next, w, out=g_small)
                        torch.mul(q_next, oma, out=q_t)
                        q_t.addcmul_(afps[t], g_small)
                else:
                    for t in range(last - 1, -1, -1):
                        q_next, q_t = qs[t + 1], qs[t]
                        torch.baddbmm(g_dir[t], q_next, w, out=g_small)
                        torch.mul(q_next, oma, out=q_t)
                        q_t.addcmul_(afps[t], g_small)
            else:
                for t in range(last - 1, -1, -1):
                    q_next, q_t, g_t = qs[t + 1], qs[t], gs[t]
                    if keep_g:
                        g_t.baddbmm_(q_next, w)
                    elif g_direct is None:
                        torch.bmm(q_next, w, out=g_t)
                    else:
                        torch.baddbmm(g_dir[t], q_next, w, out=g_t)
                    if g_states is None:
                        torch.mul(q_next, oma, out=q_t)
                    else:
                        torch.mul(g_states[t], a, out=q_t)
                        q_t.addcmul_(q_next, oma)
                    q_t.addcmul_(afps[t], g_t)
            if need[2]:
                g_x0 = oma * q[0] / a + _derivative(activation, x_init) * torch.bmm(q[0], w)
            r_init = r0
            if need[3]:
                g_rec = q / a
            if need[4]:
                g_pre = afp.mul_(g_all).div_(a)
            if need[5]:
                g_post = g_all
        else:
            w, x_init, pre_act, rates = ctx.saved_tensors[:4]
            af = _derivative(activation, pre_act, a, _pool.empty(pre_act.shape, pre_act.dtype, pre_act.device))
            mu = _copy_or_zeros(grads[0], pre_act)  # dL/dr_t, prefilled with the direct part
            q = _pool.empty(mu.shape, mu.dtype, mu.device)  # dL/dp_t
            qs, mus, afs = q.unbind(0), mu.unbind(0), af.unbind(0)
            for t in range(mu.shape[0] - 1, 0, -1):
                torch.mul(afs[t], mus[t], out=qs[t])
                mus[t - 1].baddbmm_(qs[t], w)
                mus[t - 1].addcmul_(mus[t], oma)
            torch.mul(af[0], mu[0], out=q[0])
            r_init = x_init
            if need[2]:
                g_x0 = oma * mu[0] + torch.bmm(q[0], w)
            g_rec = q if need[3] else None
            g_pre = q if need[4] else None
            g_post = mu.mul_(a) if need[5] else None
        q_bf = _batch_first(q, single) if (need[0] or need[1]) else None  # dL/d(drive)
        g_drive = q_bf if need[0] else None
        g_w = _weight_grad(q_bf, rates, r_init, single) if need[1] else None
        if g_w is not None and single:
            g_w = g_w[0]
        if g_x0 is not None and single:
            g_x0 = g_x0[0]
        noise_grads = [None if g is None else _from_time_major(g, single) for g in (g_rec, g_pre, g_post)]
        return (g_drive, g_w, g_x0, *noise_grads, None, None)


def _reference_backward(ctx, grads):
    """Backward through the reference loop with autograd (used under ``create_graph``)."""
    n_saved = 5 if ctx.dynamics.form == "current" else 4
    kept = iter(ctx.saved_tensors[n_saved:])
    inputs = [next(kept) if present else None for present in ctx.present]
    drive, w_rec, x0, n_rec, n_pre, n_post = inputs
    noise = StepNoise(n_rec, n_pre, n_post)
    states, rates = reference_loop(ctx.dynamics, x0, drive, w_rec, None if noise.is_empty else noise)
    outs = (states, rates) if ctx.dynamics.form == "current" else (rates,)
    pairs = [(o, g) for o, g in zip(outs, grads) if g is not None]
    wanted = [i for i, x in enumerate(inputs) if x is not None and ctx.needs_input_grad[i]]
    got = torch.autograd.grad(
        [o for o, _ in pairs], [inputs[i] for i in wanted], [g for _, g in pairs],
        create_graph=True, allow_unused=True,
    )
    result = [None] * 8
    for i, g in zip(wanted, got):
        result[i] = g
    return tuple(result)


def _copy_or_zeros(g: Tensor | None, like: Tensor) -> Tensor:
    """A new contiguous time-major copy of an output gradient (zeros when None)."""
    out = _pool.empty(like.shape, like.dtype, like.device)
    return out.zero_() if g is None else out.copy_(g)


def _weight_grad(q: Tensor, rates: Tensor, r_init: Tensor, single: bool) -> Tensor:
    """``sum_{trials, t} q_t^T r_{t-1}`` from batch-first ``q`` and ``rates``: (networks, N, N).

    ONE GEMM over all time steps and trials: the rows of ``q`` (trial, t >= 1) after
    the first against the rows of ``rates`` before the last pair each ``q_t`` with
    ``r_{t-1}``, except at trial boundaries (``q`` of trial b at t = 0 against the
    last rate of trial b - 1), whose products are taken back out; ``t = 0`` pairs
    with the initial rates.
    """
    if single:
        q, rates = q.unsqueeze(0), rates.unsqueeze(0)
    n_nets, batch, time_steps, n_units = q.shape
    g_w = torch.bmm(q[:, :, 0].transpose(-1, -2), r_init)
    if time_steps > 1:
        q_rows = q.reshape(n_nets, batch * time_steps, n_units)
        r_rows = rates.reshape(n_nets, batch * time_steps, n_units)
        g_w.baddbmm_(q_rows[:, 1:].transpose(-1, -2), r_rows[:, :-1])
        if batch > 1:
            g_w.baddbmm_(q[:, 1:, 0].transpose(-1, -2), rates[:, :-1, -1], alpha=-1)
    return g_w


# --------------------------------------------------------------------------- public API
def fused_unsupported_reason(
    dynamics: Dynamics,
    initial_state: Tensor,
    drive: Tensor,
    w_rec: Tensor,
    noise: StepNoise | None = None,
) -> str | None:
    """Why the fused loop cannot run these arguments, or ``None`` when it can."""
    if dynamics.activation not in _FUSED_ACTIVATIONS:
        return f"activation {dynamics.activation!r} has no fused form"
    if dynamics.form not in ("current", "rate"):
        return f"form {dynamics.form!r} has no fused form"
    tensors = [drive, w_rec, initial_state, dynamics.alpha]
    if noise is not None:
        tensors += [n for n in noise if n is not None]
    for x in tensors:
        if x.dtype not in SUPPORTED_DTYPES:
            return f"dtype {x.dtype} (the fused loop runs float32 and float64)"
        if x.device != drive.device:
            return "tensors on different devices"
    if len({x.dtype for x in tensors}) != 1:
        return "tensors of mixed dtypes"
    if dynamics.alpha.requires_grad:
        return "alpha requires a gradient"
    if torch._C._are_functorch_transforms_active():
        return "a torch.func transform is active"
    if w_rec.ndim == 2:
        if drive.ndim != 3:
            return f"drive must be (batch, time, units) for a (units, units) w_rec, got {tuple(drive.shape)}"
    elif w_rec.ndim == 3:
        if drive.ndim != 4 or drive.shape[0] != w_rec.shape[0]:
            return (
                "drive must be (networks, batch, time, units) for a (networks, units, units) "
                f"w_rec, got drive {tuple(drive.shape)} and w_rec {tuple(w_rec.shape)}"
            )
    else:
        return f"w_rec must be (units, units) or (networks, units, units), got {tuple(w_rec.shape)}"
    if drive.shape[-2] < 1:
        return "no time steps"
    n = w_rec.shape[-1]
    if w_rec.shape[-2] != n or drive.shape[-1] != n or initial_state.shape[-1] != n:
        return "units dimensions disagree"
    lead = drive.shape[:-2] + drive.shape[-1:]
    x0_shape = tuple(initial_state.shape)
    if len(x0_shape) > len(lead) or any(
        a not in (1, b) for a, b in zip(reversed(x0_shape), reversed(tuple(lead)))
    ):
        return f"initial_state {x0_shape} does not broadcast to {tuple(lead)}"
    if noise is not None:
        for n_ in noise:
            if n_ is not None and n_.shape != drive.shape:
                return f"noise of shape {tuple(n_.shape)} differs from drive {tuple(drive.shape)}"
    alpha = dynamics.alpha
    if alpha.numel() > 1 and alpha.shape[-1] != n:
        return f"alpha of shape {tuple(alpha.shape)} is not per unit"
    if (alpha <= 0).any():
        return "alpha must be > 0"
    return None


def fused_loop(
    dynamics: Dynamics,
    initial_state: Tensor,
    drive: Tensor,
    w_rec: Tensor,
    noise: StepNoise | None = None,
) -> tuple[Tensor, Tensor]:
    """The time loop of :func:`~neurornn.models.dynamics.reference_loop`, fused.

    Same arguments and results as the reference loop (tested equal to it), with a
    hand-written backward pass through time.

    Parameters
    ----------
    dynamics : Dynamics
        Form, activation and ``alpha`` of shape (units,) or (networks, 1, units).
    initial_state : Tensor broadcastable to (batch, units) or (networks, batch, units)
    drive : Tensor of shape (batch, time, units) or (networks, batch, time, units)
        ``W_in u[t] + b_rec`` for every step.
    w_rec : Tensor of shape (units, units) or (networks, units, units)
        Effective recurrent weights (Dale signs and masks applied; autograd maps
        the gradient back through them).
    noise : StepNoise of tensors shaped like ``drive``, optional

    Returns
    -------
    states, rates : Tensors shaped like ``drive``; ``rates`` is contiguous, ``states``
        a strided view in the current form (in the rate form both are the same tensor).

    Raises
    ------
    ValueError
        When the fused loop does not apply (see :func:`fused_unsupported_reason`).
    """
    reason = fused_unsupported_reason(dynamics, initial_state, drive, w_rec, noise)
    if reason is not None:
        raise ValueError(f"the fused loop cannot run here: {reason}")
    noise = StepNoise() if noise is None else noise
    single = w_rec.ndim == 2
    x0 = initial_state.expand(drive.shape[:-2] + drive.shape[-1:])  # (E?, B, N)
    out = _FusedLoop.apply(drive, w_rec, x0, *noise, dynamics, single)
    if dynamics.form == "current":
        return out[0], out[1]
    return out[0], out[0]

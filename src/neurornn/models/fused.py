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
  preallocated buffers (no per-step allocation, no autograd graph).
- One network runs 2-D ``addmm_``/``mm`` (a ``bmm`` with a batch of one is slower
  per call); an ensemble runs ``baddbmm_``/``bmm`` over its networks.
- No layout copies: the buffers are time-major behind the (batch, time, units)
  views the caller sees, and the callers do their input and readout GEMMs in the
  same row order (see :class:`~neurornn.models._fused_kernels.Layout`), so a step
  is one contiguous block and the drive, the rates and their gradients are used
  where they lie.
- The backward pass runs the adjoint recursion by hand (one GEMM and two
  multiply-adds per step) and forms the ``W_rec`` gradient as ONE GEMM over all
  time steps and trials.
- Only the states and rates and, in the rate form, the pre-activations are kept
  for the backward pass; ``alpha f'`` is recomputed from them in one vectorised pass.
- Large CPU buffers are reused between calls
  (:class:`~neurornn.models._fused_kernels.BufferPool`): faulting in fresh pages
  cost as much as the arithmetic on the benchmark machine.

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

import torch
from torch import Tensor

from ._fused_kernels import FUSED_ACTIVATIONS, Layout, activate, copy_or_zeros, derivative, pool
from .dynamics import Dynamics, StepNoise, reference_loop

__all__ = ["fused_loop", "fused_unsupported_reason", "clear_buffers", "SUPPORTED_DTYPES"]

SUPPORTED_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------- threads
#: Run the per-step recursions with one thread on CPU (the big GEMMs keep the caller's
#: threads). Measured on the 2-core benchmark machine: the per-step GEMMs
#: ((batch, units) @ (units, units)) and elementwise ops are not faster with two
#: threads, and each op pays the cost of waking the second one (see docs/speed.md).
LOOP_ONE_THREAD = False


class _LoopThreads:
    """Context: ``torch.set_num_threads(1)`` for the duration of a per-step loop on CPU."""

    __slots__ = ("device", "saved")

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.saved = 0

    def __enter__(self) -> None:
        if LOOP_ONE_THREAD and self.device.type == "cpu":
            n = torch.get_num_threads()
            if n > 1:
                self.saved = n
                torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        if self.saved:
            torch.set_num_threads(self.saved)


# --------------------------------------------------------------------------- the Function
class _FusedLoop(torch.autograd.Function):
    """The loop runs on the buffers of :class:`~neurornn.models._fused_kernels.Layout`
    (steps are views); outputs: (states, rates) in the current form, (rates,) in the
    rate form (where the states are the rates)."""

    @staticmethod
    def forward(ctx, drive, w_rec, x0, n_rec, n_pre, n_post, dynamics, single):
        # drive, n_*: (B, T, N) or (E, B, T, N); w_rec (N, N) or (E, N, N); x0 (E?, B, N)
        form, activation = dynamics.form, dynamics.activation
        lay = Layout(single)
        a_step, a_full = lay.alpha(dynamics.alpha, w_rec, drive)
        ctx.dynamics, ctx.single, ctx.a = dynamics, single, (a_step, a_full)
        ctx.set_materialize_grads(False)  # an unused output (often the states) gets None, not zeros
        inputs = (drive, w_rec, x0, n_rec, n_pre, n_post)
        ctx.present = tuple(x is not None for x in inputs)
        keep = [x for x in inputs if x is not None]  # for double backward (no copies)
        x_init = x0.contiguous()
        acc = lay.acc

        if form == "current":
            oma = (1 - a_step).expand_as(x_init).contiguous()  # per-step operands of the same shape run faster
            w_aT = lay.scale_rows(a_step, w_rec).transpose(-1, -2).contiguous()  # (diag(alpha) W)^T
            # the states buffer is prefilled with alpha * drive + n_rec (all steps at once)
            states = torch.mul(drive, a_full, out=lay.new(drive, gemm_out=True))
            if n_rec is not None:
                states.add_(n_rec)
            rates = lay.new(drive)
            r0 = torch.empty_like(x_init)
            activate(activation, x_init, r0)
            xs, rs = lay.steps(states), lay.steps(rates)
            x_prev, r_prev = x_init, r0
            with _LoopThreads(drive.device):
                if n_pre is None and n_post is None:  # the common case, kept lean
                    for x_t, r_t in zip(xs, rs):
                        acc(x_t, r_prev, w_aT)
                        x_t.addcmul_(x_prev, oma)
                        activate(activation, x_t, r_t)
                        x_prev, r_prev = x_t, r_t
                else:
                    pres = None if n_pre is None else lay.steps(n_pre)
                    posts = None if n_post is None else lay.steps(n_post)
                    tmp = torch.empty_like(x_init)
                    for t, (x_t, r_t) in enumerate(zip(xs, rs)):
                        acc(x_t, r_prev, w_aT)
                        x_t.addcmul_(x_prev, oma)
                        if pres is None:
                            activate(activation, x_t, r_t)
                        else:
                            torch.add(x_t, pres[t], out=tmp)
                            activate(activation, tmp, r_t)
                        if posts is not None:
                            r_t.add_(posts[t])
                        x_prev, r_prev = x_t, r_t
            # argument of f at each step (kept for the backward pass)
            z = states if n_pre is None else torch.add(states, n_pre, out=lay.new(states))
            ctx.save_for_backward(w_rec, x_init, r0, z, rates, *keep)
            return states, rates
        # rate form: p_t = r_{t-1} W^T + drive_t + n_rec_t + n_pre_t,
        #            r_t = lerp(r_{t-1}, f(p_t) + n_post_t, alpha)
        pre_act = lay.new(drive, gemm_out=True)
        if n_rec is None and n_pre is None:
            pre_act.copy_(drive)
        else:
            first, second = (n_rec, n_pre) if n_rec is not None else (n_pre, None)
            torch.add(drive, first, out=pre_act)
            if second is not None:
                pre_act.add_(second)
        rates = lay.new(drive)
        act = torch.empty_like(x_init)
        a_exp = a_step.expand_as(x_init).contiguous()
        w_T = w_rec.transpose(-1, -2).contiguous()
        posts = None if n_post is None else lay.steps(n_post)
        r_prev = x_init
        with _LoopThreads(drive.device):
            for t, (p_t, r_t) in enumerate(zip(lay.steps(pre_act), lay.steps(rates))):
                acc(p_t, r_prev, w_T)
                activate(activation, p_t, act)
                if posts is not None:
                    act.add_(posts[t])
                torch.lerp(r_prev, act, a_exp, out=r_t)
                r_prev = r_t
        ctx.save_for_backward(w_rec, x_init, pre_act, rates, *keep)
        return (rates,)

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():  # create_graph=True: differentiate the reference loop
            return _reference_backward(ctx, grads)
        single, activation = ctx.single, ctx.dynamics.activation
        a_step, a_full = ctx.a
        lay = Layout(single)
        need = ctx.needs_input_grad
        g_rec = g_pre = g_post = g_x0 = None
        device = a_step.device
        if ctx.dynamics.form == "current":
            w, x_init, r0, z, rates = ctx.saved_tensors[:5]
            oma = (1 - a_step).expand_as(x_init).contiguous()
            g_states, g_rates = grads
            afp = derivative(activation, z, a_full, lay.new(z, gemm_out=True))  # alpha f'(z_t)
            # q_t = alpha lam_t = dL/d(drive_t), with g_t the total dL/dr_t:
            #   g_t = dL/dr_t (direct) + q_{t+1} @ W
            #   q_t = alpha dL/dx_t (direct) + (1 - alpha) q_{t+1} + alpha f'_t g_t
            keep_g = need[4] or need[5]  # the noise gradients need every g_t
            if keep_g:
                g_all = copy_or_zeros(lay, g_rates, z, gemm_out=True)
            q = lay.new(z)
            qs, afps = lay.steps(q), lay.steps(afp)
            time_steps = len(qs)
            last = time_steps - 1
            g_dir = None if g_rates is None else lay.steps(g_rates)
            if keep_g:
                gs = lay.steps(g_all)
            else:
                g_small = torch.empty_like(qs[0])  # one small buffer, hot in cache
                if g_dir is None:
                    g_small.zero_()
                else:
                    g_small.copy_(g_dir[last])
                gs = [g_small] * time_steps
            g_st = None if g_states is None else lay.steps(g_states)
            if g_st is None:
                torch.mul(afps[last], gs[last], out=qs[last])
            else:
                torch.mul(g_st[last], a_step, out=qs[last])
                qs[last].addcmul_(afps[last], gs[last])
            mm, addmm = lay.mm, lay.addmm
            with _LoopThreads(device):
                if not keep_g and g_st is None:  # the common case, kept lean
                    if g_dir is None:
                        for t in range(last - 1, -1, -1):
                            q_next, q_t = qs[t + 1], qs[t]
                            mm(q_next, w, out=g_small)
                            torch.mul(q_next, oma, out=q_t)
                            q_t.addcmul_(afps[t], g_small)
                    else:
                        for t in range(last - 1, -1, -1):
                            q_next, q_t = qs[t + 1], qs[t]
                            addmm(g_dir[t], q_next, w, out=g_small)
                            torch.mul(q_next, oma, out=q_t)
                            q_t.addcmul_(afps[t], g_small)
                else:
                    for t in range(last - 1, -1, -1):
                        q_next, q_t, g_t = qs[t + 1], qs[t], gs[t]
                        if keep_g:
                            lay.acc(g_t, q_next, w)
                        elif g_dir is None:
                            mm(q_next, w, out=g_t)
                        else:
                            addmm(g_dir[t], q_next, w, out=g_t)
                        if g_st is None:
                            torch.mul(q_next, oma, out=q_t)
                        else:
                            torch.mul(g_st[t], a_step, out=q_t)
                            q_t.addcmul_(q_next, oma)
                        q_t.addcmul_(afps[t], g_t)
            q0 = lay.first(q)
            if need[2]:
                g_x0 = oma * q0 / a_step + derivative(activation, x_init) * lay.mm(q0, w)
            r_init = r0
            if need[3]:
                g_rec = q / a_full
            if need[4]:
                g_pre = afp.mul_(g_all).div_(a_full)
            if need[5]:
                g_post = g_all
        else:
            w, x_init, pre_act, rates = ctx.saved_tensors[:4]
            oma = (1 - a_step).expand_as(x_init).contiguous()
            af = derivative(activation, pre_act, a_full, lay.new(pre_act, gemm_out=True))
            mu = copy_or_zeros(lay, grads[0], pre_act, gemm_out=True)  # dL/dr_t, prefilled with the direct part
            q = lay.new(mu)  # dL/dp_t
            qs, mus, afs = lay.steps(q), lay.steps(mu), lay.steps(af)
            acc = lay.acc
            with _LoopThreads(device):
                for t in range(len(qs) - 1, 0, -1):
                    torch.mul(afs[t], mus[t], out=qs[t])
                    acc(mus[t - 1], qs[t], w)
                    mus[t - 1].addcmul_(mus[t], oma)
                torch.mul(afs[0], mus[0], out=qs[0])
            r_init = x_init
            if need[2]:
                g_x0 = oma * mus[0] + lay.mm(qs[0], w)
            g_rec = q if need[3] else None
            g_pre = q if need[4] else None
            g_post = mu.mul_(a_full) if need[5] else None
        g_drive = q if need[0] else None
        g_w = lay.weight_grad(q, rates, r_init) if need[1] else None
        return (g_drive, g_w, g_x0, g_rec, g_pre, g_post, None, None)


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


# --------------------------------------------------------------------------- public API
def clear_buffers() -> None:
    """Release the scratch buffers the fused loop keeps for reuse (CPU)."""
    pool.clear()


def fused_unsupported_reason(
    dynamics: Dynamics,
    initial_state: Tensor,
    drive: Tensor,
    w_rec: Tensor,
    noise: StepNoise | None = None,
) -> str | None:
    """Why the fused loop cannot run these arguments, or ``None`` when it can."""
    if dynamics.activation not in FUSED_ACTIVATIONS:
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
    states, rates : Tensors shaped like ``drive`` (in the rate form both are the same
        tensor): views of time-major buffers (see
        :class:`~neurornn.models._fused_kernels.Layout`);
        ``.contiguous()`` copies them where a batch-first memory layout is needed.

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

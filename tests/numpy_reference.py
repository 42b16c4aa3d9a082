"""An independent NumPy implementation of the RNN equations, for tests only.

Written from DESIGN.md's equations, not from the package code:

current form:  x[t] = (1-a) x[t-1] + a (W r[t-1] + W_in u[t] + b) + n_rec[t],  r[t] = f(x[t] + n_pre[t]) + n_post[t]
rate form:     r[t] = (1-a) r[t-1] + a (f(W r[t-1] + W_in u[t] + b + n_rec[t] + n_pre[t]) + n_post[t])
readout:       y[t] = W_out r[t] + b_out
"""

import numpy as np

NP_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "rectified_tanh": lambda x: np.maximum(np.tanh(x), 0.0),
    "identity": lambda x: x,
}


def simulate(form, activation, alpha, w_in, w_rec, b, w_out, b_out, x0, inputs, rec=None, pre=None, post=None):
    """inputs (batch, time, n_in) -> states, rates (batch, time, n), outputs (batch, time, n_out)."""
    f = NP_ACTIVATIONS[activation]
    batch, time, _ = inputs.shape
    n = w_rec.shape[0]
    zeros = np.zeros((batch, time, n))
    rec = zeros if rec is None else rec
    pre = zeros if pre is None else pre
    post = zeros if post is None else post
    states = np.zeros((batch, time, n))
    rates = np.zeros((batch, time, n))
    x = np.broadcast_to(x0, (batch, n)).astype(np.float64)
    r = f(x) if form == "current" else x
    for t in range(time):
        drive = inputs[:, t] @ w_in.T + b
        if form == "current":
            x = (1 - alpha) * x + alpha * (r @ w_rec.T + drive) + rec[:, t]
            r = f(x + pre[:, t]) + post[:, t]
        else:
            x = (1 - alpha) * x + alpha * (f(r @ w_rec.T + drive + rec[:, t] + pre[:, t]) + post[:, t])
            r = x
        states[:, t] = x
        rates[:, t] = r
    return states, rates, rates @ w_out.T + b_out

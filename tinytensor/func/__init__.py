"""Composable function transforms, with PyTorch's ``torch.func`` names and semantics.

    grad(f)(x)                       ∂f/∂x (f returns a one-element tensor); grad(grad(f)) nests
    vjp(f, x) -> (y, vjp_fn)         vjp_fn(v) = vᵀ J  (reverse mode: one backward pass)
    jvp(f, (x,), (t,)) -> (y, J t)   forward mode: one pass with tangents (autograd.forward_ad)
    jacrev(f)(x), jacfwd(f)(x)       the Jacobian, by rows (reverse) or columns (forward), batched
    hessian(f)(x)                    jacfwd(jacrev(f))
    vmap(f)(xs)                      f over a batch dim, in one call; vmap(grad(f)) = per-sample grads
    functional_call(model, params, x) a Module as a function of its weights
"""
from .functional_call import functional_call
from .transforms import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, linearize, vjp
from .vmap import vmap

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "linearize", "jacrev", "jacfwd", "hessian", "vmap",
           "functional_call"]

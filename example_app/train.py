"""Fit a noisy damped oscillator's parameters by gradient descent (numpy only, no downloads).

    python train.py                                   # one run into outputs/
    python train.py -m model=linear,cubic optimizer.lr=0.05,0.2 seed=0,1,2   # a sweep into multirun/
    python train.py fail_at_step=5                    # a job that fails, to see FAILED records
"""
from __future__ import annotations

import hydra
import numpy as np
from omegaconf import DictConfig

import hydra_ledger

# Hydra 1.4 asks the application to trust the callback targets it instantiates (1.5 will
# require it); Hydra 1.3 has no such list and wants version_base instead.
try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": hydra_ledger.EXECUTION_WHITELIST}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


def make_data(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Samples of x(t) = exp(-0.3 t) cos(2 t) with Gaussian noise."""
    t = np.linspace(0.0, 6.0, n)
    return t, np.exp(-0.3 * t) * np.cos(2.0 * t) + rng.normal(0.0, noise, n)


def features(t: np.ndarray, cfg: DictConfig) -> np.ndarray:
    """Fourier-like features times a decay; 'cubic' adds polynomial terms."""
    cols = [np.ones_like(t)]
    for k in range(1, cfg.model.harmonics + 1):
        cols += [np.exp(-0.3 * t) * np.cos(k * t), np.exp(-0.3 * t) * np.sin(k * t)]
    for p in range(1, cfg.model.poly_degree + 1):
        cols.append((t / 6.0) ** p)
    return np.stack(cols, axis=1)


@hydra.main(config_path="conf", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig) -> dict[str, float]:
    rng = np.random.default_rng(cfg.seed)
    t, y = make_data(cfg.data.n_points, cfg.data.noise, rng)
    split = int(len(t) * cfg.data.train_fraction)
    x = features(t, cfg)
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]

    w = rng.normal(0.0, 0.1, x.shape[1])
    velocity = np.zeros_like(w)
    for step in range(cfg.optimizer.steps):
        if step == cfg.fail_at_step:
            raise FloatingPointError(f"diverged at step {step} (fail_at_step={cfg.fail_at_step})")
        grad = 2.0 * x_train.T @ (x_train @ w - y_train) / len(y_train) + cfg.model.l2 * w
        velocity = cfg.optimizer.momentum * velocity - cfg.optimizer.lr * grad
        w = w + velocity
        if step % cfg.log_every == 0 or step == cfg.optimizer.steps - 1:
            train_loss = float(np.mean((x_train @ w - y_train) ** 2))
            val_loss = float(np.mean((x_val @ w - y_val) ** 2))
            hydra_ledger.log_metrics({"train_loss": train_loss, "val_loss": val_loss}, step=step)

    np.save(hydra_ledger.run_dir() / "weights.npy", w)
    return {"train_loss": train_loss, "val_loss": val_loss, "n_params": int(w.size)}


if __name__ == "__main__":
    main()

"""The same training in a plain script, without Hydra: the logger records a run of its own."""
import argparse

from tiny import fit

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--hidden", type=int, default=4)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--fail-at-step", type=int, default=-1)
args = parser.parse_args()
logger = fit(args.lr, args.hidden, args.epochs, args.fail_at_step)
print(logger.log_dir)

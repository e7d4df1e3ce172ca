"""DINO's per-step schedules (core/train/dino-schedule.h) against
facebookresearch/dino: utils.cosine_scheduler as written there, wired as
main_dino.py wires it (lr scaled by the batch / 256, 10 warm-up epochs,
min_lr 1e-6; weight decay 0.04 -> 0.4; teacher momentum 0.996 -> 1;
freeze_last_layer 1), and torch.optim.AdamW stepped with those values the
way train_one_epoch sets them (param_groups[0] the regularised tensors: lr
and weight decay; [1] the others: lr only).

tests/tools/dino-schedule prints the project's values for each step and
the result of its AdamW at them; runs of 20 epochs (2 warm-up epochs, a
tenth of the run) and of 120 epochs (the reference's 10), and of 1 epoch
(no warm-up); and a lower teacher momentum (--teacher-momentum 0.9, the
reference's --momentum_teacher).
"""
import math
import os
import subprocess
import unittest

import numpy as np
import torch

BUILD_DIR = os.environ.get("AGC_BUILD_DIR")
TOOL = os.path.join(BUILD_DIR, "tests", "tools", "dino-schedule") if BUILD_DIR else None


def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0,
                     start_warmup_value=0):
    """utils.cosine_scheduler of facebookresearch/dino."""
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = final_value + 0.5 * (base_value - final_value) * (
        1 + np.cos(np.pi * iters / len(iters)))
    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


def reference(lr, weight_decay, batch, epochs, niter_per_ep, momentum=0.996):
    """main_dino.py's schedules; warmup_epochs 10, scaled down for short runs as documented
    in agriclip.h (AgcTrainParams, dino)."""
    warmup = min(10, epochs // 10)
    return (cosine_scheduler(lr * batch / 256.0, 1e-6, epochs, niter_per_ep,
                             warmup_epochs=warmup),
            cosine_scheduler(weight_decay, 10 * weight_decay, epochs, niter_per_ep),
            cosine_scheduler(momentum, 1, epochs, niter_per_ep),
            np.array([it < niter_per_ep for it in range(epochs * niter_per_ep)]))


@unittest.skipUnless(TOOL and os.path.exists(TOOL), "tests/tools/dino-schedule is not built")
class DinoSchedule(unittest.TestCase):
    def run_tool(self, lr, weight_decay, batch, epochs, niter_per_ep, momentum=None):
        extra = [repr(momentum)] if momentum is not None else []
        out = subprocess.run([TOOL, repr(lr), repr(weight_decay), str(batch), str(epochs),
                              str(niter_per_ep), *extra], capture_output=True, text=True, check=True,
                             timeout=60).stdout.splitlines()
        steps = np.array([[float(v) for v in line.split()] for line in out[:-2]])
        weights = np.array([float(v) for v in out[-2].split()[1:]])
        biases = np.array([float(v) for v in out[-1].split()[1:]])
        return steps, weights, biases

    def check(self, lr, weight_decay, batch, epochs, niter_per_ep, momentum=None):
        steps, weights, biases = self.run_tool(lr, weight_decay, batch, epochs, niter_per_ep,
                                               momentum)
        lr_s, wd_s, momentum_s, freeze_s = reference(
            lr, weight_decay, batch, epochs, niter_per_ep,
            *([momentum] if momentum is not None else []))
        self.assertEqual(steps.shape, (epochs * niter_per_ep, 4))
        np.testing.assert_allclose(steps[:, 0], lr_s, rtol=1e-12, atol=1e-18)
        np.testing.assert_allclose(steps[:, 1], wd_s, rtol=1e-12)
        np.testing.assert_allclose(steps[:, 2], momentum_s, rtol=1e-12)
        np.testing.assert_array_equal(steps[:, 3] == 1, freeze_s)

        # train_one_epoch: each step sets the groups' lr, and group 0's weight decay
        w = torch.nn.Parameter(torch.tensor([0.5 + 0.1 * i for i in range(4)]))
        b = torch.nn.Parameter(torch.tensor([-0.2 + 0.05 * i for i in range(4)]))
        optimizer = torch.optim.AdamW([{"params": [w]},
                                       {"params": [b], "weight_decay": 0.0}])
        for it in range(epochs * niter_per_ep):
            for i, group in enumerate(optimizer.param_groups):
                group["lr"] = lr_s[it]
                if i == 0:
                    group["weight_decay"] = wd_s[it]
            w.grad = torch.tensor([math.sin(it + i) for i in range(4)])
            b.grad = torch.tensor([math.cos(it + i) for i in range(4)])
            optimizer.step()
        np.testing.assert_allclose(weights, w.detach().numpy(), rtol=1e-5)
        np.testing.assert_allclose(biases, b.detach().numpy(), rtol=1e-5)
        return lr_s, steps

    def test_short_run_warms_up_a_tenth(self):
        lr_s, _ = self.check(5e-4, 0.04, 64, 20, 3)
        self.assertEqual(lr_s[0], 0.0)  # the warm-up starts at 0
        self.assertAlmostEqual(lr_s.max(), 5e-4 * 64 / 256)

    def test_reference_warm_up_of_ten_epochs(self):
        lr_s, _ = self.check(5e-4, 0.04, 32, 120, 2)
        self.assertEqual(int(np.argmax(lr_s)), 19)  # the last warm-up step: 10 epochs of 2

    def test_one_epoch_has_no_warm_up(self):
        lr_s, _ = self.check(1e-3, 0.01, 2, 1, 5)
        self.assertAlmostEqual(lr_s[0], 1e-3 * 2 / 256)

    def test_teacher_momentum(self):
        _, steps = self.check(5e-4, 0.04, 16, 10, 4, momentum=0.9)
        self.assertEqual(steps[0, 2], 0.9)  # the first step's, then the cosine to 1


if __name__ == "__main__":
    unittest.main()

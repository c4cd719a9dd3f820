"""The driving model: PilotNet (Bojarski et al., 2016) reading raw camera frames.

Input: `frames` stacked RGB frames (newest first) so the network sees motion, and the HUD's
speed bar: speed is state a driver reads off the dashboard, not the answer. The HUD's
steering, gyro and ABS bars are blanked: they show the wheel angle and yaw the previous
actions produced, which a network would copy instead of reading the road.
"""

from __future__ import annotations

import torch
from torch import nn

from e2e.tasks.driving.config import DrivingModelConfig
from e2e.tasks.driving.sim import HUD_ROWS

# HUD columns 11-15 hold the speed bar (drawn at 12-14); 0-10 the running score (digits that
# say nothing about the road); from 16 on the ABS, steering and gyro bars
SPEED_BAR_COLS = slice(11, 16)


class PilotNet(nn.Module):
    """uint8 frames N x 3F x H x W (F stacked frames, newest first, HUD included) -> N x 3
    actions (steer, gas, brake)."""

    def __init__(self, frame_shape: tuple[int, int, int], m: DrivingModelConfig):
        super().__init__()
        if m.hud not in ("speed", "crop"):
            raise ValueError(f"model.hud must be 'speed' or 'crop', got '{m.hud}'")
        h, w, _ = frame_shape
        self.crop = HUD_ROWS if m.hud == "crop" else 0
        mask = torch.ones(1, 1, h - self.crop, w)
        if m.hud == "speed":  # the speed bar stays: speed is state, not the label
            mask[..., h - HUD_ROWS:, :] = 0
            mask[..., h - HUD_ROWS:, SPEED_BAR_COLS] = 1
        self.register_buffer("mask", mask, persistent=False)
        # the road is wide and its edges sharp: half resolution keeps them and costs 4x less
        self.pool = nn.AvgPool2d(m.pool) if m.pool > 1 else nn.Identity()
        layers, c_in = [], 3 * m.frames
        for c_out, k, s in zip(m.widths, m.kernels, m.strides):
            layers += [nn.Conv2d(c_in, c_out, k, s, bias=False), nn.BatchNorm2d(c_out), nn.ELU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n = self.features(self.pool(torch.zeros(1, 3 * m.frames, h - self.crop, w))).numel()
        fc, d_in = [], n
        for d in m.hidden:
            fc += [nn.Linear(d_in, d), nn.ELU(), nn.Dropout(m.dropout)]
            d_in = d
        self.head = nn.Sequential(nn.Flatten(), *fc, nn.Linear(d_in, 3))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames[:, :, : frames.shape[2] - self.crop].float() * self.mask / 127.5 - 1
        out = self.head(self.features(self.pool(x))).float()
        return torch.cat([out[:, :1].tanh(), out[:, 1:].sigmoid()], dim=1)

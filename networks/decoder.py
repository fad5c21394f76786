"""Dual-attention depth decoder (docs/MLDA_NET.md §3) and pose decoder (docs/MLDA_NET.md §4)."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from networks.attention import AttentionGuidedFilter, GridAttention
from networks.resize import downsample2_bilinear, upsample2_nearest

NUM_CH_DEC = [16, 32, 64, 128, 256]


def reflection_pad1(x):
    """Reflection padding by one pixel, as slices and concatenations: the same numbers as
    nn.Pad2D(1, mode="reflect"), whose CPU kernel took 19-42 % of an inference run."""
    x = paddle.concat([x[:, :, :, 1:2], x, x[:, :, :, -2:-1]], axis=3)
    return paddle.concat([x[:, :, 1:2, :], x, x[:, :, -2:-1, :]], axis=2)


class Conv3x3(nn.Layer):
    """Reflection pad 1, then a 3 x 3 convolution."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = nn.Conv2D(in_ch, out_ch, 3)

    def forward(self, x):
        return self.conv(reflection_pad1(x))


class ConvBlock(nn.Layer):
    """Conv3x3 then ELU."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = Conv3x3(in_ch, out_ch)

    def forward(self, x):
        return F.elu(self.conv(x))


class DepthDecoder(nn.Layer):
    """U-Net decoder whose every level refines its upsampled output with an attention-weighted
    guided filter, guided by the level's low-resolution feature and a grid-attention map.

    features: the encoder's 5 maps -> {("disp", s): sigmoid disparity B x 1 x H/2^s x W/2^s}
    for s in `scales` (default: the scales it was built with).
    """

    def __init__(self, num_ch_enc, scales=(0, 1, 2, 3), batch_coupled_filter=False):
        super().__init__()
        self.scales = sorted(int(s) for s in scales)
        self.num_ch_enc = list(num_ch_enc)
        ch = NUM_CH_DEC
        self.upconv_in = nn.LayerList(
            [ConvBlock(self.num_ch_enc[-1] if i == 4 else ch[i + 1], ch[i]) for i in range(5)])
        self.upconv_out = nn.LayerList(
            [ConvBlock(ch[i] + (self.num_ch_enc[i - 1] if i > 0 else 0), ch[i]) for i in range(5)])
        self.grid_attentions = nn.LayerList([GridAttention(ch[i]) for i in range(5)])
        self.dispconvs = nn.LayerDict({str(s): Conv3x3(ch[s], 1) for s in self.scales})
        self.guided_filter = AttentionGuidedFilter(r=2, eps=1e-2, batch_coupled=batch_coupled_filter)

    def forward(self, features, scales=None):
        scales = self.scales if scales is None else scales
        outputs = {}
        x = features[-1]
        for i in range(4, -1, -1):
            x = self.upconv_in[i](x)
            g = x  # the level's low-resolution feature guides the filter
            x = upsample2_nearest(x)
            if i > 0:
                x = paddle.concat([x, features[i - 1]], axis=1)
            x = self.upconv_out[i](x)
            lr = downsample2_bilinear(x)
            attention = self.grid_attentions[i](lr, g)
            x = self.guided_filter(lr, g, x, attention)
            if i in scales:
                outputs[("disp", i)] = F.sigmoid(self.dispconvs[str(i)](x))
        return outputs


class PoseDecoder(nn.Layer):
    """Feature 4 of the pose encoder -> (axisangle, translation), each B x 2 x 1 x 3:
    relu(squeeze) -> relu(conv3x3) -> relu(conv3x3) -> conv1x1 to 12, spatial mean x 0.01."""

    def __init__(self, num_ch_enc, num_frames_to_predict_for=2):
        super().__init__()
        self.num_frames = num_frames_to_predict_for
        self.squeeze = nn.Conv2D(num_ch_enc[-1], 256, 1)
        self.pose_convs = nn.LayerList([nn.Conv2D(256, 256, 3, padding=1) for _ in range(2)])
        self.pose_out = nn.Conv2D(256, 6 * num_frames_to_predict_for, 1)

    def forward(self, features):
        last = features[-1]
        if isinstance(last, (list, tuple)):  # Monodepth2 passes [pose_encoder(x)]
            last = last[-1]
        x = F.relu(self.squeeze(last))
        for conv in self.pose_convs:
            x = F.relu(conv(x))
        out = 0.01 * self.pose_out(x).mean(axis=[2, 3])
        out = out.reshape([-1, self.num_frames, 1, 6])
        return out[..., :3], out[..., 3:]

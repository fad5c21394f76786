"""Multi-level encoder with global attention (docs/MLDA_NET.md §2): the depth encoder (one image)
and the pose encoder (two stacked images, feature 4 only)."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.vision.models import resnet

from networks.attention import GlobalAttention
from networks.resize import bilinear_align_corners

RESNETS = {18: (resnet.BasicBlock, 18), 34: (resnet.BasicBlock, 34), 50: (resnet.BottleneckBlock, 50),
           101: (resnet.BottleneckBlock, 101), 152: (resnet.BottleneckBlock, 152)}
NUM_CH_ENC = [64, 64, 128, 256, 512]


class ConvBNReLU(nn.Sequential):
    """relu(bn(conv3x3(x))), the unit of the side branches and fuse blocks."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = nn.Conv2D(in_ch, out_ch, 3, padding=1)
        self.bn = nn.BatchNorm2D(out_ch)
        self.relu = nn.ReLU()


def two_convs(in_ch, out_ch):
    return nn.Sequential(ConvBNReLU(in_ch, out_ch), ConvBNReLU(out_ch, out_ch))


class MultiLevelEncoder(nn.Layer):
    """ResNet backbone fused, at each of its 5 levels, with a side branch that sees the input
    resized to that level (align-corners bilinear pyramid), followed by global attention.

    Input B x 3n x H x W in [0, 1] (H, W multiples of 32); output: 5 features of
    num_ch_enc = [64, 64, 128, 256, 512] channels at H/2 ... H/32. With `last_only` (the pose
    encoder) only level 4's side branch, fuse and attention exist and the output is [feature 4].
    """

    def __init__(self, num_layers=18, num_input_images=1, last_only=False):
        super().__init__()
        if num_layers not in RESNETS:
            raise ValueError(f"num_layers must be one of {sorted(RESNETS)}, got {num_layers}")
        block, depth = RESNETS[num_layers]
        self.num_layers, self.num_input_images = num_layers, num_input_images
        self.num_ch_enc = list(NUM_CH_ENC)
        self.levels = [4] if last_only else [0, 1, 2, 3, 4]

        self.backbone = resnet.ResNet(block, depth, num_classes=0, with_pool=False)
        if num_input_images > 1:
            self.backbone.conv1 = nn.Conv2D(3 * num_input_images, 64, 7, stride=2, padding=3, bias_attr=False)
        expansion = block.expansion
        self.backbone_ch = backbone_ch = [64] + [c * expansion for c in NUM_CH_ENC[1:]]

        in_ch = 3 * num_input_images
        self.side_branches = nn.LayerDict({str(k): two_convs(in_ch, NUM_CH_ENC[k]) for k in self.levels})
        self.fuses = nn.LayerDict({str(k): two_convs(backbone_ch[k] + NUM_CH_ENC[k], NUM_CH_ENC[k])
                                   for k in self.levels})
        self.attentions = nn.LayerDict({str(k): GlobalAttention(NUM_CH_ENC[k]) for k in self.levels})

    def load_backbone_state(self, state_dict):
        """Load ImageNet ResNet weights (paddle.vision layout) into the backbone. For n stacked
        images conv1's kernel is repeated n times along the input channels and divided by n."""
        state = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
        n = self.num_input_images
        if n > 1:
            conv1 = state["conv1.weight"]
            conv1 = conv1 if isinstance(conv1, paddle.Tensor) else paddle.to_tensor(conv1)
            state["conv1.weight"] = paddle.concat([conv1] * n, axis=1) / n
        missing, unexpected = self.backbone.set_state_dict(state)
        if missing or unexpected:
            raise ValueError(f"ImageNet weights do not fit the backbone: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")

    def _level(self, k, f, p):
        """GA_k(fuse_k(concat(backbone feature, side branch of pyramid level)))."""
        s = self.side_branches[str(k)](p)
        return self.attentions[str(k)](self.fuses[str(k)](paddle.concat([f, s], axis=1)))

    def forward(self, image):
        x = (image - 0.45) / 0.225
        h, w = x.shape[2], x.shape[3]
        pyramid, p = [], x
        for k in range(1, 6):  # each level resized from the previous one, as the original
            p = bilinear_align_corners(p, h // 2 ** k, w // 2 ** k)
            pyramid.append(p)

        bb = self.backbone
        f = F.relu(bb.bn1(bb.conv1(x)))
        stages = [None, lambda t: bb.layer1(bb.maxpool(t)), bb.layer2, bb.layer3, bb.layer4]
        features = []
        for k in range(5):
            if k > 0:
                f = stages[k](f)  # the backbone continues from f, never from the fused feature
            if k in self.levels:
                features.append(self._level(k, f, pyramid[k]))
        return features

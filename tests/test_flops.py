"""The benchmark floor's FLOP count against hand counts."""
import paddle
import paddle.nn as nn

from networks import GlobalAttention
from bench.flops import count_flops


def test_conv_flops_hand_count():
    conv = nn.Conv2D(3, 8, 3, padding=1)
    x = paddle.rand([2, 3, 10, 10])
    assert count_flops(lambda: conv(x), [conv]) == 2 * (2 * 3 * 9 * 8 * 100)


def test_global_attention_flops_hand_count():
    ga = GlobalAttention(4)
    x = paddle.rand([1, 4, 5, 5])
    kqv = 3 * 2 * 4 * 9 * 4 * 25
    matmuls = 2 * 2 * 4 * 4 * 25
    local = 2 * 4 * 4 * 25
    assert count_flops(lambda: ga(x), [ga]) == kqv + matmuls + local
